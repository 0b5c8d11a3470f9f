"""Run INSIDE TotalSegmentator's own virtual environment (its python), never imported by volseg.

    facts  TASK MODE              -> JSON on stdout: what the installed TotalSegmentator says about a task
                                     (task ids, folder names, trainer, resample spacing, class maps,
                                     each part's class map, its step size rule)
    margin TASK MODE INPUT OUT    -> OUT.npz: the fabricated networks' relative top-2 logit gap (min over
                                     the parts) on INPUT's grid, computed with TotalSegmentator's own
                                     functions around nnU-Net's predictor (as_closest_canonical,
                                     change_spacing, undo_canonical, dcm_to_nifti), to find near-ties.

Only TotalSegmentator's and nnU-Net's public functions are called; nothing of theirs is copied.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def _spec(task: str, mode: str) -> dict:
    from totalsegmentator import map_to_binary as mtb
    from totalsegmentator.map_tasks_config import DEFAULT_CONFIG, TASK_CONFIGS, TASK_ID_WEIGHTS_CONFIGS

    sub = TASK_CONFIGS[task]["sub_modes"][mode]
    ids = sub["task_id"] if isinstance(sub["task_id"], list) else [sub["task_id"]]
    parts_by_task = {"total": ("class_map_5_parts", "map_taskid_to_partname_ct"),
                     "total_v3": ("class_map_5_parts_total_v3", "map_taskid_to_partname_ct_v3"),
                     "total_mr": ("class_map_parts_mr", "map_taskid_to_partname_mr")}
    full = {int(k): v for k, v in mtb.class_map[task].items()}
    parts = []
    for tid in ids:
        if len(ids) > 1:
            maps, names = parts_by_task[task]
            labels = getattr(mtb, maps)[getattr(mtb, names)[tid]]
        else:
            labels = full
        w = TASK_ID_WEIGHTS_CONFIGS[tid]
        parts.append({"task_id": tid, "foldername": w["foldername"], "version": w.get("version"),
                      "labels": {int(k): v for k, v in labels.items()}})
    return {"task": task, "mode": mode, "trainer": sub["trainer"], "resample": sub["resample"],
            "plans": DEFAULT_CONFIG.get("plans") or "nnUNetPlans", "configuration": DEFAULT_CONFIG["model"],
            "folds": DEFAULT_CONFIG["folds"], "classes": full, "parts": parts,
            "step_size": 0.8 if task in ("total", "total_v3", "total_mr") else 0.5}


def facts(task: str, mode: str) -> None:
    import importlib.metadata as md
    out = _spec(task, mode)
    out["ts_version"] = md.version("TotalSegmentator")
    out["nnunet_version"] = md.version("nnunetv2")
    json.dump(out, sys.stdout)


def margin(task: str, mode: str, src: str, out: str) -> None:
    import nibabel as nib
    import numpy as np
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from totalsegmentator.alignment import as_closest_canonical, undo_canonical
    from totalsegmentator.config import get_weights_dir, setup_nnunet
    from totalsegmentator.resampling import change_spacing

    setup_nnunet()
    spec = _spec(task, mode)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(src)
        if path.is_dir():
            from totalsegmentator.dicom_io import dcm_to_nifti
            nifti = Path(tmp) / "dcm" / "converted_dcm.nii.gz"
            nifti.parent.mkdir()
            dcm_to_nifti(path, nifti, Path(tmp))
            path = nifti
        orig = nib.load(path)
        img = nib.Nifti1Image(orig.get_fdata(), orig.affine)
        img = as_closest_canonical(img)
        shape = img.shape
        rsp = change_spacing(img, spec["resample"], order=1, dtype=np.int32, nr_cpus=1)
        data = np.asanyarray(rsp.dataobj).astype(np.float32)
        zooms = [float(z) for z in rsp.header.get_zooms()[:3]]
        best = None
        for part in spec["parts"]:
            folder = (Path(get_weights_dir()) / part["foldername"]
                      / f"{spec['trainer']}__{spec['plans']}__{spec['configuration']}")
            pred = nnUNetPredictor(tile_step_size=spec["step_size"], use_gaussian=True, use_mirroring=False,
                                   device=torch.device("cpu"), allow_tqdm=False)
            pred.initialize_from_trained_model_folder(str(folder), use_folds=spec["folds"])
            gap = _split_gap(pred, data, zooms, multimodel=len(spec["parts"]) > 1)
            best = gap if best is None else np.minimum(best, gap)
        back = change_spacing(nib.Nifti1Image(best.astype(np.float32), rsp.affine), spec["resample"], shape,
                              order=0, dtype=np.float32, nr_cpus=1, force_affine=img.affine)
        final = undo_canonical(back, orig)
        np.savez_compressed(out, margin=np.asarray(final.dataobj, dtype=np.float32), affine=final.affine)


def _split_gap(pred, data, zooms, *, multimodel):
    """The gap on the (x, y, z) grid, slab by slab where TotalSegmentator splits the image (nnunet.py
    ``do_triple_split``: its condition, slabs and stitching, written out here as it reads there)."""
    import numpy as np

    def gap_of(arr):  # nnU-Net's SimpleITK order is (z, y, x): the NIfTI (x, y, z) array transposed
        return _relative_gap(pred, arr.transpose(2, 1, 0)[None], {"spacing": zooms[::-1]}).transpose(2, 1, 0)

    ss = data.shape
    if not (np.prod(ss) > 512 * 512 * 900 and ss[2] > 200 and multimodel):
        return gap_of(data)
    third, margin = ss[2] // 3, 20
    out = np.zeros(ss, dtype=np.float32)
    out[:, :, :third] = gap_of(data[:, :, :third + margin])[:, :, :-margin]
    out[:, :, third:third * 2] = gap_of(data[:, :, third + 1 - margin:third * 2 + margin])[:, :, margin - 1:-margin]
    out[:, :, third * 2:] = gap_of(data[:, :, third * 2 + 1 - margin:])[:, :, margin - 1:]
    return out


def _relative_gap(pred, image, props):
    """(top logit − second logit) / max(|top logit|, 1) on the image grid, from the logits nnU-Net
    computes (its float16 accumulation of windows included), via its own preprocessing adapter."""
    import numpy as np
    from nnunetv2.inference.data_iterators import PreprocessAdapterFromNpy

    ppa = PreprocessAdapterFromNpy([image], [None], [props], [None], pred.plans_manager, pred.dataset_json,
                                   pred.configuration_manager, num_threads_in_multithreaded=1)
    dct = next(ppa)
    logits = pred.predict_logits_from_preprocessed_data(dct["data"]).cpu().float().numpy()
    top = np.sort(logits, axis=0)[-2:]
    gap = (top[1] - top[0]) / np.maximum(np.abs(top[1]), 1.0)
    full = np.zeros(image.shape[1:], dtype=np.float32)  # outside nnU-Net's non-zero crop: background, no tie
    box = dct["data_properties"].get("bbox_used_for_cropping")
    if box is None or gap.shape == full.shape:
        return gap.astype(np.float32) if gap.shape == full.shape else full + np.inf
    full[:] = np.inf
    full[tuple(slice(a, b) for a, b in box)] = gap
    return full


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"facts": facts, "margin": margin}[cmd](*args)
