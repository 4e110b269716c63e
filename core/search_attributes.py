"""The custom search attributes ops filter on (registered by `make run` and the tests)."""

from temporalio.common import SearchAttributeKey

STAGE = SearchAttributeKey.for_keyword("InternshipStage")
EMPLOYER = SearchAttributeKey.for_keyword("EmployerId")
LAUNCHER = SearchAttributeKey.for_keyword("LauncherId")
CATEGORY = SearchAttributeKey.for_keyword("Category")
DUE_AT = SearchAttributeKey.for_datetime("DueAt")
ESCALATION = SearchAttributeKey.for_int("EscalationLevel")

ALL = (STAGE, EMPLOYER, LAUNCHER, CATEGORY, DUE_AT, ESCALATION)
