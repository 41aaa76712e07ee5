"""Model-free core of TimeSearch-R's `seek_video_frames` tool: call casting, windows, messages, frame selection."""
