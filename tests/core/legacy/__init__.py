"""A frozen copy of the scheduler core as it stood before the pipeline redesign (issue 11).

The differential test runs random traces through this copy and through the pipeline and
asserts identical decisions where the new pass bounds do not bite. Never edit these files
to make that test pass: they are the reference.
"""
