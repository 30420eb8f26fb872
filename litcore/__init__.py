"""litlab's foundation: what every package may use and nothing else.

``errors`` (the base of every litlab error), ``sqlite`` (SQLite as every litlab database uses
it), ``console`` (progress and output for the command groups), ``text`` (stop words and
tokenising). It imports no other litlab package.
"""
