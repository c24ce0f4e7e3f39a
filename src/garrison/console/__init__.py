"""The console: the store's owner, reached by defenders through a console link."""
