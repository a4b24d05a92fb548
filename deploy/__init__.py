"""A trained model on video files and live streams: scores, events, timelines."""
