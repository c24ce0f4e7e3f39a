"""Kernel event sources: process execs (fanotify, proc connector), file writes, sockets."""
