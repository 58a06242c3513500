"""Where skmixed's warnings point: the user's line, at any depth."""

import inspect
import os

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_stacklevel():
    """``warnings.warn``'s ``stacklevel`` for the first frame outside skmixed.

    That frame is the user's call (``fit``, ``predict``, ``skmixed.lmer``,
    ...) or scikit-learn's, when a Pipeline or a search makes the call.
    Counted by hand, a stacklevel differs by the route into the warning
    (``fit`` directly or through ``skmixed.lmer``) and breaks whenever code
    moves between functions. Call it in the ``warnings.warn`` call itself.
    """
    frame = inspect.currentframe().f_back  # the function that warns: level 1
    level = 1
    try:
        while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
            frame = frame.f_back
            level += 1
    finally:
        del frame  # no reference cycle through the frames
    return level
