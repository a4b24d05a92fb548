"""The file names that extract_features.py writes and the data readers look for, in one place."""

SUFFIX = "_i3d"  # the per-video layout's file names: <name>_i3d.npy, whatever the backbone
LIST_FILE = "features.list"  # the per-video files, one path a line
INFO_FILE = "videos.json"  # every video's record, with the settings it was extracted with
CONCAT_FILE = "concat.npy"  # with --concat: every video's features concatenated
RANGES_FILE = "nalist.npy"  # with --concat: their [from, to) snippet ranges
