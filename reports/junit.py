"""JUnit XML for CI systems: one test case per cell, failing where the gate found a regression."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from lossfuzz.harness.gate import Verdict
from lossfuzz.harness.results import cell_key


def junit(data: dict, verdict: Verdict) -> str:
    by_cell: dict = {}
    for change in verdict.regressions:
        by_cell.setdefault(change.cell, []).append(change)
    suite = ET.Element(
        "testsuite",
        name="lossfuzz",
        tests=str(len(data["cells"])),
        failures=str(len(by_cell)),
    )
    for c in data["cells"]:
        k = cell_key(c)
        case = ET.SubElement(
            suite, "testcase", classname=c["loss"], name=k, time=str(c.get("seconds", 0))
        )
        changes = by_cell.get(k)
        if changes:
            failure = ET.SubElement(
                case, "failure", message="; ".join(f"{x.mark} {x.what}" for x in changes)
            )
            worst = next((x.finding for x in changes if x.finding), None)
            failure.text = (worst["message"] + "\n\n" + worst["reproducer"]) if worst else ""
    for k in sorted(set(by_cell) - {cell_key(c) for c in data["cells"]}):
        case = ET.SubElement(suite, "testcase", classname="lossfuzz", name=k)
        ET.SubElement(case, "failure", message="; ".join(x.what for x in by_cell[k]))
    suite.set("tests", str(len(suite)))
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
