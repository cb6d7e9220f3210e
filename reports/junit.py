"""JUnit XML for CI systems: one test case per cell, failing where the gate found a regression.

Text from data is made XML-safe (``escape.xml_text``): control characters that XML
1.0 cannot hold are written as escapes, so the file is always well-formed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from lossfuzz.harness.gate import Verdict
from lossfuzz.harness.results import Results
from lossfuzz.reports.escape import xml_text


def junit(data: Results, verdict: Verdict) -> str:
    by_cell: dict = {}
    for change in verdict.regressions:
        by_cell.setdefault(change.cell, []).append(change)
    suite = ET.Element(
        "testsuite",
        name="lossfuzz",
        tests=str(len(data.cells)),
        failures=str(len(by_cell)),
    )
    for c in data.cells:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=xml_text(c.loss),
            name=xml_text(c.key.name),
            time=str(round(c.seconds, 3)),
        )
        changes = by_cell.get(c.key)
        if changes:
            failure = ET.SubElement(
                case, "failure", message=xml_text("; ".join(f"{x.mark} {x.what}" for x in changes))
            )
            worst = next((x.finding for x in changes if x.finding), None)
            failure.text = xml_text(worst.message + "\n\n" + worst.reproducer) if worst else ""
    for k in sorted(set(by_cell) - {c.key for c in data.cells}):
        case = ET.SubElement(suite, "testcase", classname="lossfuzz", name=xml_text(k.name))
        ET.SubElement(case, "failure", message=xml_text("; ".join(x.what for x in by_cell[k])))
    suite.set("tests", str(len(suite)))
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
