"""The snippet: 16 consecutive frames, the unit that every feature row, score and frame label count is made of."""

FRAMES_PER_SNIPPET = 16  # the one definition: I3D features, frame labels, scores repeated per frame, video clips
