// Compiled against one module's include roots with one header named by LAYER_HEADER: the
// layers test expects allowed includes to compile and wrong-way includes not to.
#include LAYER_HEADER

int layer_probe() { return 0; }
