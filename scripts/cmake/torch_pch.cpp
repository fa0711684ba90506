// The translation unit that owns the precompiled LibTorch header (see ts_use_torch_pch in TsHelpers.cmake).
// Its object is empty: the header is what the build wants from it.
