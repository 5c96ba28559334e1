"""The benchmark scripts in bench/ run end to end on tiny inputs."""
