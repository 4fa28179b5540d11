"""Index work spread over a Ray cluster (extra `distributed`): each module runs one kind of index
job on Ray actors or tasks and leaves its result where the single-process code would, so stores,
searches and calibration stay the same whichever path built them. Nothing is imported here: Ray
loads only when one of these modules is used.
"""
