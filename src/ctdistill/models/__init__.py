"""Models: the table of teachers (``teachers.TEACHERS``) and the seed's student CNN."""

from ctdistill.models.student import build_student
from ctdistill.models.teachers import TEACHERS, TeacherSpec, build_teacher

__all__ = ["TEACHERS", "TeacherSpec", "build_student", "build_teacher"]
