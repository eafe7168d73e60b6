/* onnx/onnx_proto.h — the ONNX messages fleet reads, decoded from the wire.
 *
 * ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
 * ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto and
 * StringStringEntryProto (onnx.proto's field numbers), decoded over the
 * file's bytes: names and tensor data stay slices of the buffer (nothing is
 * copied; a string is not NUL-terminated), the arrays of a message live in
 * one arena freed with the model. Every count is bounded and every slice
 * lies inside the buffer: the file is untrusted. Fields fleet does not read
 * (docs, metadata, training info, sparse data) are skipped, not checked.
 */
#ifndef FLEET_ONNX_PROTO_H
#define FLEET_ONNX_PROTO_H

#include <stdbool.h>
#include <stdint.h>

#include "fleet/dtype.h"
#include "onnx/pb.h"

/* TensorProto.DataType */
enum {
    FLEET__ONNX_FLOAT = 1, FLEET__ONNX_UINT8 = 2, FLEET__ONNX_INT8 = 3, FLEET__ONNX_UINT16 = 4,
    FLEET__ONNX_INT16 = 5, FLEET__ONNX_INT32 = 6, FLEET__ONNX_INT64 = 7, FLEET__ONNX_STRING = 8,
    FLEET__ONNX_BOOL = 9, FLEET__ONNX_FLOAT16 = 10, FLEET__ONNX_DOUBLE = 11,
    FLEET__ONNX_UINT32 = 12, FLEET__ONNX_UINT64 = 13, FLEET__ONNX_BFLOAT16 = 16,
};

/* AttributeProto.AttributeType */
enum {
    FLEET__ONNX_ATTR_FLOAT = 1, FLEET__ONNX_ATTR_INT = 2, FLEET__ONNX_ATTR_STRING = 3,
    FLEET__ONNX_ATTR_TENSOR = 4, FLEET__ONNX_ATTR_GRAPH = 5, FLEET__ONNX_ATTR_FLOATS = 6,
    FLEET__ONNX_ATTR_INTS = 7, FLEET__ONNX_ATTR_STRINGS = 8, FLEET__ONNX_ATTR_TENSORS = 9,
    FLEET__ONNX_ATTR_GRAPHS = 10,
};

/* Limits of what a file may declare (each refused with its own text). */
#define FLEET__ONNX_MAX_NODES (1 << 20)
#define FLEET__ONNX_MAX_VALUES (1 << 20)  /* initializers, inputs, outputs, value infos */
#define FLEET__ONNX_MAX_NODE_IO (1 << 16) /* one node's inputs or outputs            */
#define FLEET__ONNX_MAX_ATTRS 1024        /* one node's attributes                   */
#define FLEET__ONNX_MAX_LIST (1 << 20)    /* one attribute's ints, floats, strings   */

typedef fleet__pb_slice fleet__onnx_str;

typedef struct fleet__onnx_tensor {
    fleet__onnx_str name;
    int32_t data_type;
    int ndim;
    int64_t dims[FLEET_MAX_DIMS];
    fleet__pb_slice msg;        /* the whole TensorProto, for its typed fields */
    bool has_raw;
    fleet__pb_slice raw;
    bool external;              /* data_location EXTERNAL                   */
    fleet__onnx_str location;   /* external_data "location"                 */
    int64_t ext_offset, ext_length; /* -1 where absent                      */
    size_t offset;              /* of the message, from the buffer's start  */
} fleet__onnx_tensor;

typedef struct fleet__onnx_attr {
    fleet__onnx_str name;
    int type;
    float f;
    int64_t i;
    fleet__onnx_str s;
    fleet__onnx_tensor *t;
    int64_t *ints;
    int n_ints;
    float *floats;
    int n_floats;
    fleet__onnx_str *strings;
    int n_strings;
    int n_tensors, n_graphs;    /* counted, not decoded (no op fleet runs takes them) */
} fleet__onnx_attr;

typedef struct fleet__onnx_node {
    fleet__onnx_str *inputs;    /* an empty name: an optional input left out */
    int n_inputs;
    fleet__onnx_str *outputs;
    int n_outputs;
    fleet__onnx_str name, op_type, domain;
    fleet__onnx_attr *attrs;
    int n_attrs;
    size_t offset;
} fleet__onnx_node;

/* One dimension of a ValueInfo's shape: a number, a named parameter, or
 * neither (unknown). */
typedef struct fleet__onnx_dim {
    bool has_value, has_param;
    int64_t value;
    fleet__onnx_str param;
} fleet__onnx_dim;

typedef struct fleet__onnx_value_info {
    fleet__onnx_str name;
    bool is_tensor;             /* false: a sequence, map or other type     */
    int32_t elem_type;
    bool has_shape;
    int ndim;
    fleet__onnx_dim dims[FLEET_MAX_DIMS];
} fleet__onnx_value_info;

typedef struct fleet__onnx_graph {
    fleet__onnx_str name;
    fleet__onnx_node *nodes;
    int n_nodes;
    fleet__onnx_tensor *initializers;
    int n_initializers;
    int n_sparse_initializers;
    fleet__onnx_value_info *inputs, *outputs, *value_infos;
    int n_inputs, n_outputs, n_value_infos;
} fleet__onnx_graph;

typedef struct fleet__onnx_opset {
    fleet__onnx_str domain;     /* "" or "ai.onnx": the standard operators   */
    int64_t version;
} fleet__onnx_opset;

typedef struct fleet__onnx_arena fleet__onnx_arena;

typedef struct fleet__onnx_model {
    const uint8_t *base;        /* the buffer decoded                        */
    size_t size;
    int64_t ir_version;
    fleet__onnx_opset *opsets;
    int n_opsets;
    fleet__onnx_str producer_name, producer_version;
    bool has_graph;
    fleet__onnx_graph graph;
    int n_functions;
    fleet__onnx_arena *arena;
} fleet__onnx_model;

/* Decode a ModelProto of `size` bytes. On failure FLEET_ERR_INVALID_MODEL
 * (or OUT_OF_MEMORY), *out zeroed. */
fleet_status fleet__onnx_parse(const uint8_t *buf, size_t size, fleet__onnx_model *out);
void fleet__onnx_model_free(fleet__onnx_model *m);
/* Decode a lone TensorProto (ONNX's test data files): *holder is an empty
 * model over the same bytes, for fleet__onnx_tensor_read. */
fleet_status fleet__onnx_parse_tensor(const uint8_t *buf, size_t size, fleet__onnx_model *holder,
                                      fleet__onnx_tensor *out);

/* Whether two names are equal; a name against a C string. */
bool fleet__onnx_str_eq(fleet__onnx_str a, fleet__onnx_str b);
bool fleet__onnx_str_is(fleet__onnx_str a, const char *s);

/* Elements of t's dtype and a byte size per element (0: a dtype fleet does
 * not read, such as strings), and the element count (its dims' product;
 * -1 on overflow). */
size_t fleet__onnx_elem_size(int32_t data_type);
int64_t fleet__onnx_tensor_numel(const fleet__onnx_tensor *t);

/* t's data, stored in the model (raw_data or its typed field; not
 * external), as little-endian elements of its dtype into dst of
 * exactly numel * elem_size bytes. FLEET_ERR_INVALID_MODEL when the stored
 * data has another size. */
fleet_status fleet__onnx_tensor_read(const fleet__onnx_model *m, const fleet__onnx_tensor *t,
                                     void *dst, size_t bytes);

#endif /* FLEET_ONNX_PROTO_H */
