"""Compiled twins of the TensorFlow, Keras and PyTorch impls (see ``modes.py``).

Every eager call-expression impl of a backend a mode compiles gets a twin with the
same loss, call, dtypes and documented deviations, named by the mode:
``tf-xla:``, ``keras-xla:``, ``torch-compile:``. Importing this module after the
eager backends registers them.
"""

from __future__ import annotations

from lossfuzz.harness.backends.modes import MODES
from lossfuzz.harness.registry import IMPLS, implementation


def register_twins() -> None:
    for impl in list(IMPLS.values()):
        if impl.call is None or impl.mode is not None:
            continue
        for mode in MODES.values():
            if impl.backend != mode.base or impl.runtime != mode.base:
                continue
            twin = f"{mode.name}:{impl.id.partition(':')[2]}"
            if twin in IMPLS:
                continue
            implementation(
                twin,
                loss=impl.loss,
                call=impl.call,
                runtime=impl.runtime,
                imports=impl.imports,
                dtypes=impl.dtypes,
                requires=impl.requires,
                params=impl.params,
                deviations=impl.deviations,
                grad_wrt=impl.grad_wrt,
                reduced=impl.reduced,
                mode=mode.name,
                eager=impl.id,
                min_classes=impl.min_classes,
                doc=impl.doc,
            )


register_twins()
