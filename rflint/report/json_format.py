"""``--output-format json``: one stable object with the analyzed models and the diagnostics.

File paths (of models, diagnostics and edits) are relative to the working directory when
the file is under it and absolute otherwise, exactly as the text formats print them.
Sizes are lists with one entry per spatial axis (``[h, w]`` for images). Every fix is
listed, whatever its applicability; ``fix`` is the one ``--fix`` would apply.
"""

from __future__ import annotations

import json

from rflint.core.diagnostics import Diagnostic, Fix, ModelReport
from rflint.report.summary import RunSummary, rule_name


def render(run: RunSummary) -> str:
    document = {
        "version": run.version,
        "models": [model_object(run, m) for m in run.models],
        "diagnostics": [diagnostic_object(run, d) for d in run.diagnostics],
    }
    return json.dumps(document, indent=2) + "\n"


def model_object(run: RunSummary, model: ModelReport) -> dict:
    result = model.result
    return {
        "name": model.name,
        "file": run.path(model.file),
        "line": model.line,
        "input_res": list(model.input_res),
        "i_min": list(result.i_min) if result else None,
        "i_max": list(result.i_max) if result else None,
        "status": model.status,
        "error": model.error,
        "layers": model.layer_count,
        "unknown_ops": dict(result.unknown_ops) if result else {},
        "neutral_ops": dict(result.unknown_ops) if result else {},  # 0.1's name, kept one version
        "judged": result.judged if result else None,
        "capture": result.capture if result else None,
        "build": result.build if result else None,
        "input_res_source": model.input_res_source,
    }


def diagnostic_object(run: RunSummary, diagnostic: Diagnostic) -> dict:
    return {
        "code": diagnostic.code,
        "name": rule_name(diagnostic.code),
        "severity": diagnostic.severity,
        "message": diagnostic.message,
        "file": run.path(diagnostic.file),
        "line": diagnostic.line,
        "column": diagnostic.column,
        "end_line": diagnostic.end_line,
        "end_column": diagnostic.end_column,
        "model": ", ".join(diagnostic.models),
        "models": list(diagnostic.models),
        "layers": [{"name": layer.name, "r_min": list(layer.r_min), "models": list(layer.models)}
                   for layer in diagnostic.layers],
        "fix": fix_object(run, diagnostic.fix) if diagnostic.fix else None,
        "alternatives": [fix_object(run, fix) for fix in diagnostic.alternatives],
        **({"fix_note": diagnostic.fix_note} if diagnostic.fix_note else {}),  # its fix search ran out of time
    }


def fix_object(run: RunSummary, fix: Fix) -> dict:
    return {
        "applicability": fix.applicability,
        "message": fix.description,
        "edits": [
            {
                "file": run.path(edit.file),
                "line": edit.line,
                "column": edit.column,
                "end_line": edit.end_line,
                "end_column": edit.end_column,
                "old": edit.old,
                "new": edit.new,
            }
            for edit in fix.edits
        ],
        "models": list(fix.models),
        "i_min_after": list(fix.i_min_after),
        "flops_before": fix.flops_before,
        "flops_after": fix.flops_after,
        "params_before": fix.params_before,
        "params_after": fix.params_after,
    }
