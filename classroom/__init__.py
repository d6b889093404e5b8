"""The class game: a teacher runs the masked-word game for a whole class (join code, rounds, live leaderboard).

State lives in a database through SQLAlchemy (SQLite file by default, any URL such as Postgres for several
servers). No Streamlit here; pages only render what ``ClassStore`` returns.
"""

from .rules import ClassError, ClassUnavailable, NotAllowed
from .service import (CLOSED, LOBBY, OPEN, OVER, REVEALED, ClassStore, ClassView, MyGuess, PlayerLink, Pulse, Reveal,
                      Standing, StudentView, TeacherLink, WordCount)

__all__ = ["CLOSED", "LOBBY", "OPEN", "OVER", "REVEALED", "ClassError", "ClassStore", "ClassUnavailable",
           "ClassView", "MyGuess", "NotAllowed", "PlayerLink", "Pulse", "Reveal", "Standing", "StudentView",
           "TeacherLink", "WordCount"]
