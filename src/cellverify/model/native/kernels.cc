// Every kernel in one translation unit: TensorFlow's headers take most of a
// compile, and this way they are parsed and their templates instantiated
// once, not once per source (the compiler's CPU went from 25.2-25.6 s to
// 13.7-15.3 s, with the same bits; docs/design.md, "Native conv1").
//
// The sources share one anonymous namespace here, so a name defined in two
// of them is a compile error, and the fast path then falls back to
// TensorFlow's kernels saying so (tests/test_native.py compiles this file).

#include "conv_rows.cc"
#include "conv_spans.cc"
#include "channel_counts.cc"
