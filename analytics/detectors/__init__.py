"""One module per fault family. Each detector maps a sampled picture (and, for the
temporal ones, a little per-camera state) to a :class:`~analytics.detectors.base.Reading`
under a documented ``*Thresholds`` dataclass; :mod:`analytics.diagnose` runs them all."""
