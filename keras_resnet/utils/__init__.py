"""Shared checks of arguments, crash-safe writes, image decoding and the config base class."""
