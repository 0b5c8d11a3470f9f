"""What the pipeline returns for a study: its report and files, or the error that stopped it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from volseg.errors import UsageError, VolsegError
from volseg.reports.model import Report


@dataclass(frozen=True)
class StudyResult:
    """One segmented or measured study: its report and the files written (name → path)."""

    study_id: str
    report: Report
    outputs: dict[str, Path] = field(default_factory=dict)

    def labels_nifti(self):
        """The label map written (segmentation.nii.gz) as a nibabel image."""
        import nibabel as nib

        if "segmentation" not in self.outputs:
            raise UsageError(f"study {self.study_id!r} wrote no label map (measure writes none)")
        return nib.load(str(self.outputs["segmentation"]))


@dataclass(frozen=True)
class StudyFailure:
    """A study that could not be done, with the error saying why."""

    study_id: str
    input: str
    error: VolsegError
