"""Readers that turn dataset files into `Sample` records."""

from data_pipelines.formats.video_r1 import load_dataset_files, load_samples

__all__ = ["load_dataset_files", "load_samples"]
