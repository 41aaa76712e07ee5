"""Procedural video-reasoning data: mp4 clips of coloured shapes and questions about them."""
