"""The class: the room the teacher runs (classroom) and who its learners are (learners)."""
