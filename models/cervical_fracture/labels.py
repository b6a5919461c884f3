"""The vertebra labels of this task, in one place: the phantom, the pipeline and the adapter's
label map all use them."""

VERTEBRAE = ("C1", "C2", "C3", "C4", "C5", "C6", "C7")
OTHER_SPINE = 8
LABEL_TABLE: dict[int, tuple[str, tuple[int, int, int]]] = {
    1: ("C1", (230, 25, 75)),
    2: ("C2", (245, 130, 48)),
    3: ("C3", (255, 225, 25)),
    4: ("C4", (60, 180, 75)),
    5: ("C5", (70, 240, 240)),
    6: ("C6", (0, 130, 200)),
    7: ("C7", (145, 30, 180)),
    8: ("other spine", (170, 170, 170)),
}
