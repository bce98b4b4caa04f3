"""ferryman's benchmark harness: ferryman against curl, lftp, stdlib ftplib and OpenSSH sftp.

Run ``python benchmarks/run.py --help``; see docs/benchmarks.md.
"""

__all__: list[str] = []
