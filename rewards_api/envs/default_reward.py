"""The original UI's starting reward function, in a module of its own: the parameters' defaults need it,
and importing it loads nothing (not NumPy, not the sandbox)."""

DEFAULT_REWARD_SOURCE = '''def reward_function(params):
    """+1 for every step the car stays on the track."""
    if params["is_alive"]:
        return 1
    return 0
'''
"""The original UI's starting reward function, as source text."""
