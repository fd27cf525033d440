"""The InternImage + UperNet model family (InternImage-OOD, BRAVO 2024): backbone with DCNv3 in
exportable operations, UperNet head, end-to-end model, mmsegmentation checkpoint converter."""
