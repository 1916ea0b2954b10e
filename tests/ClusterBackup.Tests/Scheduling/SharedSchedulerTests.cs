using System.Globalization;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Scheduling;

/// <summary>
/// Several agents, one schedule: real agent processes sharing Quartz's clustered store on a real
/// PostgreSQL. What is stored afterwards is read from moto_server, never from the agents.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class SharedSchedulerTests(RigFixture fixture, SharedSchedulerFixture shared) : IClassFixture<SharedSchedulerFixture>
{
    private const string EveryTenSeconds = "*/10 * * * * ?";
    private const string Never = "0 0 0 1 1 ? 2099";
    private readonly LocalRig _rig = fixture.Rig;

    [Fact]
    public async Task Two_agents_run_every_due_backup_once_and_after_one_is_killed_the_other_keeps_every_cluster_on_schedule()
    {
        string[] clusters = ["shared-a", "shared-b", "shared-c"];
        var (database, connection) = await shared.NewDatabaseAsync();
        var config = SharedConfig(connection, EveryTenSeconds, clusters);
        var started = DateTimeOffset.UtcNow;
        await using var one = await StartAgentAsync(config, "agent-1");
        await using var two = await StartAgentAsync(config, "agent-2");

        await one.WaitUntilAsync(
            async () => await InstancesAsync(database) == "agent-1,agent-2", "both agents checked in to the shared store", TimeSpan.FromSeconds(60));
        await one.WaitUntilAsync(async () => await one.ValueAsync("cluster_backup_scheduler_instances") == 2, "agent-1 counts two agents", TimeSpan.FromSeconds(30));
        Assert.Contains("instance=\"agent-2\"", await two.ScrapeAsync(), StringComparison.Ordinal);

        // Steady state: from the first full ten seconds after both started.
        var steady = started.AddSeconds(20);
        await Task.Delay(steady.AddSeconds(40) - DateTimeOffset.UtcNow);
        foreach (var cluster in clusters)
        {
            var sets = (await CompleteSetsAsync(cluster)).Where(s => s >= steady).ToList();
            AssertOncePerFiring(cluster, sets);
            Assert.True(sets.Count >= 3, $"{cluster}: {sets.Count} sets in 40 s of a ten-second schedule: {string.Join(", ", sets)}");
        }


        await one.KillAsync();
        var killed = DateTimeOffset.UtcNow;
        await two.WaitUntilAsync(async () => await two.ValueAsync("cluster_backup_scheduler_instances") == 1, "agent-2 sees agent-1 gone", TimeSpan.FromSeconds(60));
        await Task.Delay(killed.AddSeconds(45) - DateTimeOffset.UtcNow);
        foreach (var cluster in clusters)
        {
            var all = await CompleteSetsAsync(cluster);
            AssertOncePerFiring(cluster, all.Where(s => s >= steady).ToList());
            var after = all.Where(s => s >= killed.AddSeconds(15)).ToList();
            Assert.True(after.Count >= 2, $"{cluster}: {after.Count} sets in the 30 s after agent-1 died: {string.Join(", ", all)}\n{two.Log}");
            Assert.Empty(await IncompleteSetsAsync(cluster, olderThan: DateTimeOffset.UtcNow.AddSeconds(-15)));
        }

        Assert.Equal(200, await two.HealthAsync());
        Assert.Equal(0, await two.TerminateAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task A_run_killed_midway_is_recovered_by_another_agent_which_removes_the_partial_set()
    {
        const string cluster = "shared-recovered";
        await _rig.Etcd.PutBulkAsync();
        await using var relay = new TcpRelay(_rig.Moto.Port, bytesPerSecond: 1_000_000).Start();
        var (_, connection) = await shared.NewDatabaseAsync();
        var config = SharedConfig(connection, Never, cluster);
        config["ClusterBackup"]!["Storage"]!["ServiceUrl"] = relay.Endpoint;

        // agent-1 alone: no set yet, so it catches up at once, through the slow relay.
        await using var one = await StartAgentAsync(config, "agent-1");
        await one.WaitUntilAsync(() => Task.FromResult(relay.Forwarded > 1_500_000), "agent-1's upload under way", TimeSpan.FromSeconds(90));
        await using var two = await StartAgentAsync(config, "agent-2");
        await two.WaitUntilAsync(async () => await two.HealthAsync() == 200, "agent-2 ready", TimeSpan.FromSeconds(60));
        await one.KillAsync();
        Assert.NotEmpty(await IncompleteSetsAsync(cluster)); // what the dead run left

        // agent-2's own catch-up firing may back the cluster up first; the recovered firing then
        // waits for it, removes what the dead run left, and finds the cluster covered.
        await two.WaitUntilAsync(
            () => Task.FromResult(two.Log.Contains("Recovering the backup of", StringComparison.Ordinal)
                && two.Log.Contains("committed set", StringComparison.Ordinal)),
            "agent-2 recovered the run and a set was committed", TimeSpan.FromSeconds(180));
        Assert.Contains("removed 1 partial sets", two.Log, StringComparison.Ordinal);
        await Task.Delay(TimeSpan.FromSeconds(3)); // whichever firing came second finds the cluster covered

        Assert.Single(await CompleteSetsAsync(cluster));
        Assert.Empty(await IncompleteSetsAsync(cluster));
        Assert.Empty(await _rig.Moto.OpenUploadKeysAsync(LocalRig.Bucket, $"backups/{cluster}/"));
        var direct = Direct(config);
        var verify = await CliRunner.RunAsync(direct, "verify", "--cluster", cluster, "--set", "all");
        Assert.True(verify.ExitCode == 0, verify.ToString());
        verify.AssertOutput("verified 1 sets: 1 good, 0 bad");
        Assert.Equal(0, await two.TerminateAsync(TimeSpan.FromSeconds(60)));
    }

    [Theory]
    [InlineData("postgres")]
    [InlineData("memory")]
    public async Task A_backup_command_is_refused_while_an_agent_backs_the_same_cluster_up(string store)
    {
        var cluster = $"busy-{store}";
        await _rig.Etcd.PutBulkAsync();
        await using var relay = new TcpRelay(_rig.Moto.Port, bytesPerSecond: 1_000_000).Start();
        var config = store == "postgres"
            ? SharedConfig((await shared.NewDatabaseAsync()).ConnectionString, Never, cluster)
            : WithSchedule(_rig.Config("moto", cluster, "tunnel", _rig.Node1), Never);
        config["ClusterBackup"]!["Storage"]!["ServiceUrl"] = relay.Endpoint;
        await using var agent = await StartAgentAsync(config, "agent-1");
        await agent.WaitUntilAsync(() => Task.FromResult(relay.Forwarded > 1_000_000), "the agent's upload under way", TimeSpan.FromSeconds(90));

        var refused = await CliRunner.RunAsync(config, "backup", "--cluster", cluster);
        Assert.Equal(1, refused.ExitCode);
        refused.AssertError($"error: cluster {cluster}: another backup of it is in progress, by ");
        refused.AssertError(store == "postgres" ? "cluster-backup agent-1" : "another process on this host");
        refused.AssertError("nothing was written");

        await agent.WaitUntilAsync(() => Task.FromResult(agent.Log.Contains("committed set", StringComparison.Ordinal)), "the agent's run committed", TimeSpan.FromSeconds(180));
        Assert.Single(await CompleteSetsAsync(cluster));
        Assert.Empty(await IncompleteSetsAsync(cluster));

        // Once the agent's run is over the command runs.
        var next = await CliRunner.RunAsync(config, "backup", "--cluster", cluster);
        Assert.True(next.ExitCode == 0, next.ToString());
        Assert.Equal(0, await agent.TerminateAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task With_PostgreSQL_stopped_for_a_minute_the_agents_serve_metrics_run_nothing_twice_and_resume()
    {
        const string cluster = "shared-outage";
        var (database, connection) = await shared.NewDatabaseAsync();
        var config = SharedConfig(connection, EveryTenSeconds, cluster);
        var started = DateTimeOffset.UtcNow;
        await using var one = await StartAgentAsync(config, "agent-1");
        await using var two = await StartAgentAsync(config, "agent-2");
        await one.WaitUntilAsync(async () => (await CompleteSetsAsync(cluster)).Count >= 2, "two sets", TimeSpan.FromSeconds(60));

        await shared.Postgres.StopAsync();
        var stopped = DateTimeOffset.UtcNow;
        DaemonProcess? three = null;
        var restarting = DateTimeOffset.MaxValue;
        try
        {
            // An agent started while the database is down serves its metrics and waits for it.
            three = await StartAgentAsync(config, "agent-3");
            await three.WaitUntilAsync(async () => await three.HealthAsync() == 503, "agent-3 serving /healthz", TimeSpan.FromSeconds(60));
            Assert.Equal(0, await three.ValueAsync("cluster_backup_scheduler_instances"));
            Assert.NotNull(await three.ValueAsync($"cluster_backup_last_success_timestamp_seconds{{cluster=\"{cluster}\"}}"));

            foreach (var agent in new[] { one, two })
            {
                await agent.WaitUntilAsync(async () => await agent.HealthAsync() == 503, "/healthz reports the store", TimeSpan.FromSeconds(60));
                Assert.Equal(0, await agent.ValueAsync("cluster_backup_scheduler_instances"));
                Assert.NotNull(await agent.ValueAsync($"cluster_backup_last_success_timestamp_seconds{{cluster=\"{cluster}\"}}"));
            }

            await Task.Delay(stopped.AddSeconds(60) - DateTimeOffset.UtcNow);
            using var http = new HttpClient();
            var health = await http.GetAsync($"http://127.0.0.1:{one.MetricsPort}/healthz");
            Assert.StartsWith("scheduler store unreachable: ", await health.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        finally
        {
            restarting = DateTimeOffset.UtcNow;
            await shared.Postgres.StartAsync();
        }

        var back = DateTimeOffset.UtcNow;
        await using var started3 = three;
        foreach (var agent in new[] { one, two, three })
        {
            await agent.WaitUntilAsync(async () => await agent.HealthAsync() == 200, "/healthz ok again", TimeSpan.FromSeconds(90));
        }

        await one.WaitUntilAsync(async () => await InstancesAsync(database) == "agent-1,agent-2,agent-3", "three agents in the store", TimeSpan.FromSeconds(60));

        await one.WaitUntilAsync(async () => (await CompleteSetsAsync(cluster)).Count(s => s >= back) >= 2, "schedules resumed", TimeSpan.FromSeconds(90));
        var sets = await CompleteSetsAsync(cluster);
        AssertOncePerFiring(cluster, sets.Where(s => s >= started.AddSeconds(20)).ToList());
        // At most a run that was under way when the database stopped commits during the outage.
        Assert.True(sets.Count(s => s > stopped.AddSeconds(5) && s < restarting.AddSeconds(-1)) == 0, string.Join(", ", sets));
        foreach (var agent in new[] { one, two })
        {
            Assert.Equal(1, Occurrences(agent.Log, "store is unreachable"));
            Assert.DoesNotContain("Transient exception", agent.Log[agent.Log.IndexOf("store is unreachable", StringComparison.Ordinal)..agent.Log.IndexOf("reachable again", StringComparison.Ordinal)], StringComparison.Ordinal);
            Assert.Equal(1, Occurrences(agent.Log, "reachable again"));
            Assert.Equal(0, await agent.TerminateAsync(TimeSpan.FromSeconds(60)));
        }

        Assert.Equal(1, Occurrences(three.Log, "cannot be reached at start-up"));
        Assert.Equal(0, await three.TerminateAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task Jobs_are_reconciled_with_the_configuration_at_start_clusters_removed_and_rescheduled()
    {
        var (database, connection) = await shared.NewDatabaseAsync();
        var config = SharedConfig(connection, Never, "kept", "removed");
        config["ClusterBackup"]!["Clusters"]![1]!["VerifySchedule"] = Never;
        await using (var first = await StartAgentAsync(config, "agent-1"))
        {
            await first.WaitUntilAsync(async () => await first.HealthAsync() == 200, "agent-1 ready", TimeSpan.FromSeconds(60));
            Assert.Equal("kept,removed,removed", await shared.Postgres.SqlAsync("SELECT string_agg(job_name, ',' ORDER BY job_name) FROM qrtz_job_details", database));
            Assert.Equal(0, await first.TerminateAsync(TimeSpan.FromSeconds(60)));
        }

        var changed = SharedConfig(connection, "0 15 3 * * ?", "kept");
        await using var second = await StartAgentAsync(changed, "agent-1");
        await second.WaitUntilAsync(async () => await second.HealthAsync() == 200, "agent-1 ready again", TimeSpan.FromSeconds(60));
        await second.WaitUntilAsync(
            async () => await shared.Postgres.SqlAsync("SELECT string_agg(job_name, ',' ORDER BY job_name) FROM qrtz_job_details", database) == "kept",
            "the removed cluster's jobs deleted", TimeSpan.FromSeconds(30));
        Assert.Equal("0 15 3 * * ?", await shared.Postgres.SqlAsync("SELECT cron_expression FROM qrtz_cron_triggers", database));
        Assert.Contains("cluster-verify.removed", second.Log, StringComparison.Ordinal);
        Assert.Equal(0, await second.TerminateAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task Config_check_validates_the_scheduler_keys_contacts_nothing_and_refuses_a_password()
    {
        var config = SharedConfig("Host=db.invalid;Port=5432;Database=cluster_backup;Username=cluster_backup", Never, "check");
        var ok = await CliRunner.RunAsync(config, "config", "check");
        Assert.True(ok.ExitCode == 0, ok.ToString());

        config["ClusterBackup"]!["Scheduler"] = new JsonObject
        {
            ["Store"] = "postgres",
            ["ConnectionString"] = "Host=db.example;Username=cluster_backup;Password=hunter2-secret",
            ["MaxConcurrentRuns"] = 0,
        };
        var refused = await CliRunner.RunAsync(config, "config", "check");
        Assert.Equal(78, refused.ExitCode);
        refused.AssertError("ClusterBackup:Scheduler:ConnectionString: holds a password");
        refused.AssertError("ClusterBackup:Scheduler:MaxConcurrentRuns: 0 is outside 1..64");
        Assert.DoesNotContain("hunter2", refused.Output + refused.Error, StringComparison.Ordinal);

        config["ClusterBackup"]!["Scheduler"] = new JsonObject { ["Store"] = "postgresql" };
        (await CliRunner.RunAsync(config, "config", "check")).AssertError("ClusterBackup:Scheduler:Store: 'postgresql' is not \"memory\" or \"postgres\"");
    }

    [Fact]
    public async Task A_store_whose_tables_cannot_be_created_stops_the_agent_with_exit_1_and_a_start_once_they_can_runs()
    {
        // The agents' role may connect to a database it does not own, but not create tables in it.
        var (database, connection) = await shared.NewDatabaseAsync(owner: "postgres");
        var config = SharedConfig(connection, Never, "no-tables");

        await using (var stopped = await StartAgentAsync(config, "agent-1"))
        {
            // A clean exit here would tell systemd (Restart=on-failure) to leave the agent down.
            Assert.Equal(1, await stopped.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.True(stopped.Log.Contains("error: the agent stopped: the scheduler did not start on its PostgreSQL store: ", StringComparison.Ordinal), stopped.Log);
            Assert.True(stopped.Log.Contains("permission denied for schema public", StringComparison.Ordinal), stopped.Log);
            Assert.Equal(1, CountOf(stopped.Log, "error: the agent stopped")); // once, though the catch-up waited on it too
        }

        await shared.Postgres.SqlAsync($"GRANT CREATE ON SCHEMA public TO {PostgresServer.Role}", database);
        await using var agent = await StartAgentAsync(config, "agent-1");
        await agent.WaitUntilAsync(async () => await agent.HealthAsync() == 200, "healthy once it may create its tables", TimeSpan.FromSeconds(60));
        Assert.Equal("agent-1", await InstancesAsync(database));
        Assert.Equal(0, await agent.TerminateAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task A_retry_is_kept_in_the_shared_store_until_it_fires_and_commits_the_set()
    {
        const string cluster = "shared-retry";
        var (database, connection) = await shared.NewDatabaseAsync();
        await using var relay = new TcpRelay(_rig.Moto.Port); // not started: storage is down
        var config = SharedConfig(connection, Never, cluster);
        config["ClusterBackup"]!["Storage"]!["ServiceUrl"] = relay.Endpoint;
        config["ClusterBackup"]!["Clusters"]![0]!["Retry"] = new JsonObject { ["Attempts"] = 3, ["DelaySeconds"] = 5 };
        await using var agent = await StartAgentAsync(config, "agent-1");

        await agent.WaitUntilAsync(
            () => Task.FromResult(agent.Log.Contains("will be tried again: retry 1 of 3 at ", StringComparison.Ordinal)), "the first retry scheduled", TimeSpan.FromSeconds(60));
        Assert.Contains($"{cluster}-retry-1", await shared.Postgres.SqlAsync("SELECT string_agg(trigger_name, ',') FROM qrtz_triggers", database), StringComparison.Ordinal);
        relay.Start();

        await agent.WaitUntilAsync(async () => (await CompleteSetsAsync(cluster)).Count == 1, "the retry's set", TimeSpan.FromSeconds(60));
        Assert.Equal(0, await agent.TerminateAsync(TimeSpan.FromSeconds(60)));
    }

    private static int CountOf(string text, string value) =>
        (text.Length - text.Replace(value, string.Empty, StringComparison.Ordinal).Length) / value.Length;

    /// <summary>The agents Quartz's state table lists, by name; empty until it exists.</summary>
    private async Task<string> InstancesAsync(string database)
    {
        try
        {
            return await shared.Postgres.SqlAsync("SELECT string_agg(instance_name, ',' ORDER BY instance_name) FROM qrtz_scheduler_state", database);
        }
        catch (InvalidOperationException)
        {
            return string.Empty; // the first agent is still creating the tables
        }
    }

    private JsonObject SharedConfig(string connectionString, string schedule, params string[] clusters)
    {
        var config = _rig.Config("moto", clusters[0], "tunnel", _rig.Node1);
        var first = config["ClusterBackup"]!["Clusters"]![0]!;
        var list = new JsonArray();
        foreach (var name in clusters)
        {
            var cluster = first.DeepClone();
            cluster["Name"] = name;
            list.Add(cluster);
        }

        config["ClusterBackup"]!["Clusters"] = list;
        config["ClusterBackup"]!["Scheduler"] = new JsonObject { ["Store"] = "postgres", ["ConnectionString"] = connectionString };
        return WithSchedule(config, schedule);
    }

    private static JsonObject WithSchedule(JsonObject config, string schedule)
    {
        foreach (var cluster in config["ClusterBackup"]!["Clusters"]!.AsArray())
        {
            cluster!["Schedule"] = schedule;
        }

        return config;
    }

    /// <summary>The same configuration without the relay, for checking what is stored.</summary>
    private JsonObject Direct(JsonObject config)
    {
        var direct = config.DeepClone().AsObject();
        direct["ClusterBackup"]!["Storage"]!["ServiceUrl"] = _rig.Moto.Endpoint;
        direct["ClusterBackup"]!["Scheduler"] = new JsonObject { ["Store"] = "memory" };
        direct["ClusterBackup"]!["Encryption"]!["IdentityFile"] = _rig.AgeIdentityFile;
        return direct;
    }

    private static async Task<DaemonProcess> StartAgentAsync(JsonObject config, string instance)
    {
        var own = config.DeepClone().AsObject();
        if (own["ClusterBackup"]!["Scheduler"] is JsonObject scheduler)
        {
            scheduler["InstanceName"] = instance;
        }

        return await DaemonProcess.StartAsync(own, $"cluster-backup-{instance}");
    }

    private async Task<List<DateTimeOffset>> CompleteSetsAsync(string cluster) =>
        (await SetsAsync(cluster)).Where(s => s.Value).Select(s => s.Key).Order().ToList();

    private async Task<List<DateTimeOffset>> IncompleteSetsAsync(string cluster, DateTimeOffset? olderThan = null) =>
        (await SetsAsync(cluster)).Where(s => !s.Value && s.Key < (olderThan ?? DateTimeOffset.MaxValue)).Select(s => s.Key).ToList();

    /// <summary>
    /// Every set under the cluster's prefix: its start time, and whether it is complete (has
    /// manifest.json). Keys beside the sets (the stored manifest cache) are no set's.
    /// </summary>
    private async Task<Dictionary<DateTimeOffset, bool>> SetsAsync(string cluster)
    {
        var sets = new Dictionary<DateTimeOffset, bool>();
        foreach (var key in await _rig.Moto.ObjectKeysAsync(LocalRig.Bucket, $"backups/{cluster}/"))
        {
            if (key.Split('/') is not [_, _, var set, var name]
                || !DateTimeOffset.TryParseExact(set, "yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var id))
            {
                continue;
            }

            sets[id] = (sets.TryGetValue(id, out var complete) && complete) || name == "manifest.json";
        }

        return sets;
    }

    /// <summary>No two sets from one firing of a ten-second schedule: at most one set starts in each ten seconds.</summary>
    private static void AssertOncePerFiring(string cluster, IReadOnlyList<DateTimeOffset> sets)
    {
        var twice = sets.GroupBy(s => s.ToUnixTimeSeconds() / 10).Where(g => g.Count() > 1).ToList();
        Assert.True(twice.Count == 0, $"{cluster}: two sets from one firing: {string.Join("; ", twice.Select(g => string.Join(", ", g)))}");
    }

    private static int Occurrences(string text, string what) =>
        text.Split(what).Length - 1;
}
