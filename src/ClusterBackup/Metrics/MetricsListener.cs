using System.Net;
using System.Text;
using ClusterBackup.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Metrics;

/// <summary>Serves <c>GET /metrics</c> (Prometheus text format) and <c>GET /healthz</c> on <c>Metrics:Listen</c>.</summary>
internal sealed partial class MetricsListener(MetricsOptions options, AgentMetrics metrics, AgentHealth health, ILogger<MetricsListener> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (string.IsNullOrEmpty(options.Listen) || !SettingsValidator.TryParseListen(options.Listen, out var host, out var port))
        {
            return;
        }

        using var listener = new HttpListener();
        var prefixHost = host is "0.0.0.0" or "*" or "[::]" ? "+" : host;
        listener.Prefixes.Add($"http://{prefixHost}:{port}/");
        try
        {
            listener.Start();
        }
        catch (HttpListenerException ex)
        {
            LogCannotListen(options.Listen, ex.Message);
            throw new InvalidOperationException($"cannot listen on Metrics:Listen {options.Listen}: {ex.Message}", ex);
        }

        LogListening(options.Listen);
        using var stop = stoppingToken.Register(listener.Stop);
        while (!stoppingToken.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException && stoppingToken.IsCancellationRequested)
            {
                break;
            }

            await AnswerAsync(context, stoppingToken);
        }
    }

    private async Task AnswerAsync(HttpListenerContext context, CancellationToken cancellationToken)
    {
        var response = context.Response;
        try
        {
            switch (context.Request.HttpMethod, context.Request.Url?.AbsolutePath)
            {
                case ("GET", "/metrics"):
                    response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
                    await metrics.WriteAsync(response.OutputStream, cancellationToken);
                    break;
                case ("GET", "/healthz"):
                    response.StatusCode = health.Healthy ? 200 : 503;
                    await response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes(health.Describe() + "\n"), cancellationToken);
                    break;
                default:
                    response.StatusCode = 404;
                    break;
            }
        }
        catch (Exception ex) when (ex is HttpListenerException or IOException)
        {
            // the scraper went away
        }
        finally
        {
            response.Close();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Serving /metrics and /healthz on {Listen}")]
    private partial void LogListening(string listen);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Cannot listen on {Listen}: {Reason}")]
    private partial void LogCannotListen(string listen, string reason);
}
