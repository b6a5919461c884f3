"""The colour of each spine structure, in one place: the phantom's truth masks and the
adapter's label maps use the same table (the adapter never imports the phantom)."""

MASK_COLORS: dict[str, tuple[int, int, int]] = {
    "AP Pedicle": (255, 225, 25),
    "AP Spinous Process": (245, 130, 48),
    "AP Vertebra": (0, 130, 200),
    "LAT Anterior Vertebral Line": (230, 25, 75),
    "LAT Disk Height": (60, 180, 75),
    "LAT Posterior Vertebral Line": (255, 225, 25),
    "LAT Spinous Process": (245, 130, 48),
    "LAT Vertebra": (0, 130, 200),
}
