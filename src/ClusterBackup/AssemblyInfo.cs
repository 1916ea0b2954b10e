// The agent runs on the Linux admin workstation only (file modes, fsync of directories, systemd).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
