#!/usr/bin/env python3
"""
Reads the checks of an upstream kernel-hardening-checker checkout as data, for
scripts/harden-follow.ts to write src/harden/rules.ts from.

Usage: python3 scripts/harden-rules.py CHECKOUT > rules.json

Upstream's add_*_checks functions build a list per arch with `l += [...]` under
`if arch ...` branches. The list handed to them records the source line of every
addition, so one run per arch gives each check, the arches it is added for and
its place in upstream's order, with no parsing of upstream's source.
"""

import json
import sys

ARCHES = ['X86_64', 'X86_32', 'ARM64', 'ARM', 'RISCV']


class RecordingList(list):
    def __init__(self):
        super().__init__()
        self.lines = []

    def __iadd__(self, items):
        line = sys._getframe(1).f_lineno  # pylint: disable=protected-access
        for i, item in enumerate(items):
            self.lines.append((line, i))
        return super().__iadd__(items)


def as_data(check, engine):
    if isinstance(check, engine.VersionCheck):
        return {'kind': 'version', 'atLeast': list(check.ver_expected)}
    if isinstance(check, (engine.OR, engine.AND)):
        kind = 'or' if isinstance(check, engine.OR) else 'and'
        return {'kind': kind, 'items': [as_data(o, engine) for o in check.opts]}
    return {'kind': 'option', 'type': check.opt_type, 'reason': check.reason,
            'decision': check.decision, 'name': check.name, 'expected': check.expected}


def rules_of(add_checks, arches, engine):
    """Every check in upstream's order, with the arches it is added for."""
    found = {}
    for arch in arches:
        checks = RecordingList()
        add_checks(checks, arch)
        for place, check in zip(checks.lines, checks):
            data = json.dumps(as_data(check, engine))
            found.setdefault((place, data), []).append(arch)
    rules = []
    for (place, data), added_for in sorted(found.items(), key=lambda entry: entry[0][0]):
        rule = {'check': json.loads(data)}
        if len(added_for) != len(arches):
            rule['arches'] = [a for a in ARCHES if a in added_for]
        rules.append(rule)
    return rules


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: harden-rules.py CHECKOUT')
    sys.path.insert(0, sys.argv[1])
    from kernel_hardening_checker import checks, engine  # pylint: disable=import-outside-toplevel
    json.dump({
        'kconfig': rules_of(checks.add_kconfig_checks, ARCHES, engine),
        'cmdline': rules_of(checks.add_cmdline_checks, ARCHES, engine),
        # sysctl checks also run when the arch is unknown: the checks added then apply to all
        'sysctl': rules_of(checks.add_sysctl_checks, ARCHES + [None], engine),
    }, sys.stdout, indent=1)
    print()


main()
