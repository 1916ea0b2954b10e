using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ClusterBackup.Streams;

namespace ClusterBackup.Storage;

/// <summary>
/// A directory as the store: each object is written under a temp name, fsynced and renamed into
/// place, so a reader sees either nothing or the whole object. Files are 0600, directories 0700.
/// </summary>
internal sealed partial class FileSystemBackupStore(string root) : IBackupStore, IIncompleteUploads
{
    private const string PartialSuffix = ".partial";
    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode PrivateFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public string Describe(string key) => PathOf(key);

    public Task<IObjectUpload> StartUploadAsync(string key, CancellationToken cancellationToken = default)
    {
        var path = PathOf(key);
        var directory = Path.GetDirectoryName(path)!;
        try
        {
            // Another process removing an empty set dir (a run that lost its reservation, prune)
            // may take the directory away between creating it and creating the file: create both again.
            for (var attempt = 1; ; attempt++)
            {
                CreateDirectories(directory);
                var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}{PartialSuffix}");
                try
                {
                    var stream = new FileStream(temp, new FileStreamOptions
                    {
                        Mode = FileMode.CreateNew,
                        Access = FileAccess.Write,
                        UnixCreateMode = PrivateFileMode,
                        Options = FileOptions.Asynchronous,
                        BufferSize = 0,
                    });
                    return Task.FromResult<IObjectUpload>(new Upload(stream, temp, path));
                }
                catch (DirectoryNotFoundException) when (attempt < 10)
                {
                    // removed under us: again
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new StorageException($"cannot write under {directory}: {ex.Message}", ex);
        }
    }

    public async Task<bool> CreateExclusiveAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        await using var upload = (Upload)await StartUploadAsync(key, cancellationToken);
        await upload.Content.WriteAsync(content, cancellationToken);
        return await upload.CommitExclusiveAsync(cancellationToken);
    }

    public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default)
    {
        var path = PathOf(key);
        try
        {
            return Task.FromResult<Stream>(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 0, FileOptions.Asynchronous));
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new StoredObjectNotFoundException(path, ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new StorageException($"cannot read {path}: {ex.Message}", ex);
        }
    }

    public async IAsyncEnumerable<StoredObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await Task.CompletedTask;
        var start = prefix.Contains('/') ? PathOf(prefix[..prefix.LastIndexOf('/')]) : root;
        if (!Directory.Exists(start))
        {
            yield break;
        }

        foreach (var stored in Snapshot(start, prefix))
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return stored;
        }
    }

    /// <summary>A listed file, or null when another process removed it between the listing and its stat (a reservation marker).</summary>
    private static StoredObject? Stat(string key, FileInfo file)
    {
        try
        {
            return new StoredObject(key, file.Length, file.LastWriteTimeUtc);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    /// <summary>The committed files under a directory, read at once; none if another process removed it meanwhile.</summary>
    private List<StoredObject> Snapshot(string start, string prefix)
    {
        try
        {
            return new DirectoryInfo(start).EnumerateFiles("*", SearchOption.AllDirectories)
                .Select(f => (Key: Path.GetRelativePath(root, f.FullName).Replace(Path.DirectorySeparatorChar, '/'), File: f))
                .Where(f => f.Key.StartsWith(prefix, StringComparison.Ordinal) && !f.File.Name.EndsWith(PartialSuffix, StringComparison.Ordinal))
                .OrderBy(f => f.Key, StringComparer.Ordinal)
                .Select(f => Stat(f.Key, f.File))
                .OfType<StoredObject>()
                .ToList();
        }
        catch (DirectoryNotFoundException)
        {
            return [];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new StorageException($"cannot list {start}: {ex.Message}", ex);
        }
    }

    /// <summary>Temp files of uploads that were never committed nor disposed (the process died).</summary>
    public async IAsyncEnumerable<IncompleteUpload> ListIncompleteUploadsAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await Task.CompletedTask;
        var start = prefix.Contains('/') ? PathOf(prefix[..prefix.LastIndexOf('/')]) : root;
        if (!Directory.Exists(start))
        {
            yield break;
        }

        foreach (var file in new DirectoryInfo(start).EnumerateFiles("*" + PartialSuffix, SearchOption.AllDirectories))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var directory = Path.GetRelativePath(root, file.DirectoryName!).Replace(Path.DirectorySeparatorChar, '/');
            var nameAndGuid = file.Name[1..^PartialSuffix.Length]; // ".{name}.{guid}.partial"
            var name = nameAndGuid[..Math.Max(0, nameAndGuid.LastIndexOf('.'))];
            var key = directory == "." ? name : $"{directory}/{name}";
            if (key.StartsWith(prefix, StringComparison.Ordinal))
            {
                yield return new IncompleteUpload(key, file.Name, file.LastWriteTimeUtc);
            }
        }
    }

    public Task AbortAsync(IncompleteUpload upload, CancellationToken cancellationToken = default)
    {
        if (upload.UploadId.Contains('/') || !upload.UploadId.EndsWith(PartialSuffix, StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{upload.UploadId}' is not an upload's temp file", nameof(upload));
        }

        File.Delete(Path.Combine(Path.GetDirectoryName(PathOf(upload.Key))!, upload.UploadId));
        return Task.CompletedTask;
    }

    public Task DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        var path = PathOf(key);
        try
        {
            File.Delete(path);
            RemoveEmptyParents(Path.GetDirectoryName(path)!);
            return Task.CompletedTask;
        }
        catch (DirectoryNotFoundException)
        {
            return Task.CompletedTask;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new StorageException($"cannot delete {path}: {ex.Message}", ex);
        }
    }

    private void RemoveEmptyParents(string directory)
    {
        var top = Path.GetFullPath(root).TrimEnd('/');
        while (directory.Length > top.Length && Directory.Exists(directory) && !Directory.EnumerateFileSystemEntries(directory).Any())
        {
            try
            {
                Directory.Delete(directory);
            }
            catch (IOException)
            {
                return; // another writer put something in it meanwhile (or removed it): it is theirs now
            }

            directory = Path.GetDirectoryName(directory)!;
        }
    }

    /// <summary>Every directory from the root down, 0700 (a set's keys name clusters and times).</summary>
    private void CreateDirectories(string directory)
    {
        var top = Path.GetFullPath(root).TrimEnd('/');
        var missing = new Stack<string>();
        for (var d = Path.GetFullPath(directory).TrimEnd('/'); !Directory.Exists(d); d = Path.GetDirectoryName(d)!)
        {
            missing.Push(d);
            if (d.Length <= top.Length)
            {
                break;
            }
        }

        while (missing.TryPop(out var d))
        {
            Directory.CreateDirectory(d, DirectoryMode);
            try
            {
                File.SetUnixFileMode(d, DirectoryMode);
            }
            catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
            {
                // removed under us by another process; the caller creates it again
            }
        }
    }

    private string PathOf(string key)
    {
        if (key.Split('/').Any(s => s is "." or ".."))
        {
            throw new ArgumentException($"key '{key}' has a '.' or '..' segment", nameof(key));
        }

        return Path.Combine(root, key);
    }

    private static void FsyncDirectory(string directory)
    {
        var fd = Open(directory, 0x10000 /* O_RDONLY | O_DIRECTORY */);
        if (fd < 0)
        {
            return;
        }

        _ = Fsync(fd);
        _ = Close(fd);
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "link", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Link(string existing, string created);

    [LibraryImport("libc", EntryPoint = "fsync")]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    private sealed class Upload : IObjectUpload
    {
        private const int EEXIST = 17;
        private readonly FileStream _stream;
        private readonly string _temp;
        private readonly string _path;
        private bool _committed;

        public Upload(FileStream stream, string temp, string path)
        {
            _stream = stream;
            _temp = temp;
            _path = path;
            Content = new WriteOnlyStream(WriteAsync);
        }

        /// <summary>Every write error (a full disk) is a <see cref="StorageException"/> naming the file.</summary>
        public Stream Content { get; }

        public Task CommitAsync(CancellationToken cancellationToken = default) =>
            CompleteAsync(path => File.Move(_temp, path, overwrite: true), cancellationToken);

        /// <summary>Commits only if nothing has the name yet: link(2) fails with EEXIST atomically.</summary>
        public async Task<bool> CommitExclusiveAsync(CancellationToken cancellationToken = default)
        {
            var created = true;
            await CompleteAsync(path =>
            {
                if (Link(_temp, path) != 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    created = errno == EEXIST ? false : throw new IOException($"link: {Marshal.GetPInvokeErrorMessage(errno)}");
                }

                File.Delete(_temp);
            }, cancellationToken);
            return created;
        }

        private async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            try
            {
                await _stream.WriteAsync(data, cancellationToken);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new StorageException($"cannot write {_path}: {ex.Message}", ex);
            }
        }

        private async Task CompleteAsync(Action<string> publish, CancellationToken cancellationToken)
        {
            try
            {
                await _stream.FlushAsync(cancellationToken);
                _stream.Flush(flushToDisk: true);
                await _stream.DisposeAsync();
                publish(_path);
                FsyncDirectory(Path.GetDirectoryName(_path)!);
                _committed = true;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new StorageException($"cannot write {_path}: {ex.Message}", ex);
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (!_committed)
            {
                await _stream.DisposeAsync();
                File.Delete(_temp);
            }
        }
    }
}
