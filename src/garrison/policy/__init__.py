"""Runtime rules: scopes (collections), effects, and the verdict engine.

The defender's whole use of this package::

    engine = PolicyEngine(load_rules_file(path))      # or PolicyEngine() for the default
    policy = engine.resolve(Subject(image=..., container=..., labels=...))
    decisions = evaluate_process(policy, model, event, ExecFacts(...))
    verdict = verdict_of(decisions)                    # Verdict.DENY on prevent/block
    if verdict is Verdict.ALLOW and exec_ignorable(policy, model, event, facts): ALLOW_ALWAYS

Rule files are described in docs/rules.md.
"""

from garrison.policy.collections import Collection, Subject
from garrison.policy.compiled import EffectivePolicy
from garrison.policy.decision import Action, AttackType, Decision, strongest_first, verdict_of
from garrison.policy.engine import PolicyEngine
from garrison.policy.evaluate import evaluate_file, evaluate_network, evaluate_process
from garrison.policy.expression import Expression, ExpressionError, ExprInput, compile_expression
from garrison.policy.ignore import exec_ignorable
from garrison.policy.inputs import NO_MODEL, ExecFacts, FileFacts, ModelView, StaticModel
from garrison.policy.loading import InvalidRules, dump_rules, load_rules, load_rules_file
from garrison.policy.schema import DEFAULT_RULE, CustomRule, RuleSet, RuntimeRule

__all__ = [
    "DEFAULT_RULE",
    "NO_MODEL",
    "Action",
    "AttackType",
    "Collection",
    "CustomRule",
    "Decision",
    "EffectivePolicy",
    "ExecFacts",
    "ExprInput",
    "Expression",
    "ExpressionError",
    "FileFacts",
    "InvalidRules",
    "ModelView",
    "PolicyEngine",
    "RuleSet",
    "RuntimeRule",
    "StaticModel",
    "Subject",
    "compile_expression",
    "dump_rules",
    "evaluate_file",
    "evaluate_network",
    "evaluate_process",
    "exec_ignorable",
    "load_rules",
    "load_rules_file",
    "strongest_first",
    "verdict_of",
]
