"""RTCstack's version, here so that every app (core included) can read it without importing the site package."""

__version__ = "0.1.0"
