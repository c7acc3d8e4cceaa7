"""Helpers shared by the test areas: stand-ins, real servers and worker processes, fakes, audio, markers."""
