"""litlab, the application: the ``litlab`` command's root, which mounts each package's command
group (imported only when its command runs) and launches the terminal app. Nothing imports it."""
