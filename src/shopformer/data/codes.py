"""The integer codes every encoded id shares: users, items and event types alike.

Row 0 of every embedding table is padding and row 1 stands for ids the encoder has not seen, so a
real id's code is never below `FIRST_CODE`. Every module reads these three names from here.
"""

__all__ = ["FIRST_CODE", "PADDING_CODE", "UNKNOWN_CODE"]

#: Code reserved for padding positions of fixed-length sequences (embedding row 0).
PADDING_CODE = 0
#: Code given to ids the encoder has not seen (embedding row 1).
UNKNOWN_CODE = 1
#: Code of the first known id; known ids take FIRST_CODE, FIRST_CODE + 1, … in `classes_` order.
FIRST_CODE = 2
