"""The rule registry. One module per rule, each carrying its code, docs and examples.

A rule's docstring is its documentation (ruff's headings: What it does, Why is this bad?,
Example, Use instead, Fix safety); ``VALID``/``INVALID`` hold model sources that must not /
must trigger it (Fixit style) and feed both the tests and ``rules/*.md``.
"""

from __future__ import annotations

from rflint.core.rules.base import Rule
from rflint.core.rules.rf001_unproductive_layer import UnproductiveLayer
from rflint.core.rules.rf002_underutilized_layer import UnderutilizedLayer
from rflint.core.rules.rf003_not_fully_utilized import NotFullyUtilized
from rflint.core.rules.rf004_unknown_op import UnknownOp
from rflint.core.rules.rf9xx_analysis_failed import ANALYSIS_FAILURES
from rflint.core.rules.rf904_no_bounded_layer import NoBoundedLayer


def all_rules() -> list[Rule]:
    return [UnproductiveLayer(), UnderutilizedLayer(), NotFullyUtilized(), UnknownOp(), *ANALYSIS_FAILURES,
            NoBoundedLayer()]


def rule_by_code() -> dict[str, Rule]:
    return {rule.code: rule for rule in all_rules()}
