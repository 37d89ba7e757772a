"""The golden cases, one row each (written once from the committed set, then edited by hand).

id, type (attnd mechanism), seed, config (the reference constructor's parameters),
inputs (name, shape) drawn in this order with torch.randn after construction (scale: a factor),
masks (forward argument -> ["lengths", values] | ["causal", [L, S]] | ["bool", rows]),
post (what is done to the parameters right after construction), tol (rtol, atol), reference
(the text of case.json's "reference").
"""

INDEX = {"set": "public", "base_seed": 1234, "generator": "the reference implementations themselves, run in float32 on the CPU", "format": "README.md"}

CASES = [
    {'id': 'full_nomask',
     'type': 'full',
     'seed': 1234,
     'config': {'softmax_temp': None, 'attention_dropout': 0.1},
     'inputs': [['queries', [2, 7, 2, 8]], ['keys', [2, 9, 2, 8]], ['values', [2, 9, 2, 6]]],
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) FullAttention(); '
                  'forward(queries, keys, values, attn_mask, query_lengths, key_lengths) with '
                  'masks built as fast_transformers.masking objects: attn_mask -> FullMask(bool '
                  '(L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1234) before init and inputs.'},
    {'id': 'full_causal',
     'type': 'full',
     'seed': 1235,
     'config': {'softmax_temp': None, 'attention_dropout': 0.1},
     'inputs': [['queries', [2, 8, 2, 8]], ['keys', [2, 8, 2, 8]], ['values', [2, 8, 2, 8]]],
     'masks': {'attn_mask': ['causal', [8, 8]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) FullAttention(); '
                  'forward(queries, keys, values, attn_mask, query_lengths, key_lengths) with '
                  'masks built as fast_transformers.masking objects: attn_mask -> FullMask(bool '
                  '(L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1235) before init and inputs.'},
    {'id': 'full_key_lengths',
     'type': 'full',
     'seed': 1236,
     'config': {'softmax_temp': None, 'attention_dropout': 0.1},
     'inputs': [['queries', [3, 6, 2, 4]], ['keys', [3, 10, 2, 4]], ['values', [3, 10, 2, 6]]],
     'masks': {'key_lengths': ['lengths', [10, 7, 3]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) FullAttention(); '
                  'forward(queries, keys, values, attn_mask, query_lengths, key_lengths) with '
                  'masks built as fast_transformers.masking objects: attn_mask -> FullMask(bool '
                  '(L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1236) before init and inputs.'},
    {'id': 'full_query_key_lengths',
     'type': 'full',
     'seed': 1237,
     'config': {'softmax_temp': None, 'attention_dropout': 0.1},
     'inputs': [['queries', [2, 9, 2, 6]], ['keys', [2, 7, 2, 6]], ['values', [2, 7, 2, 5]]],
     'masks': {'query_lengths': ['lengths', [9, 4]], 'key_lengths': ['lengths', [7, 5]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) FullAttention(); '
                  'forward(queries, keys, values, attn_mask, query_lengths, key_lengths) with '
                  'masks built as fast_transformers.masking objects: attn_mask -> FullMask(bool '
                  '(L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1237) before init and inputs. '
                  "query_lengths does not change FullAttention's output."},
    {'id': 'full_softmax_temp',
     'type': 'full',
     'seed': 1238,
     'config': {'softmax_temp': 0.3, 'attention_dropout': 0.1},
     'inputs': [['queries', [2, 6, 2, 8]], ['keys', [2, 8, 2, 8]], ['values', [2, 8, 2, 4]]],
     'masks': {'key_lengths': ['lengths', [8, 5]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) '
                  'FullAttention(softmax_temp=0.3); forward(queries, keys, values, attn_mask, '
                  'query_lengths, key_lengths) with masks built as fast_transformers.masking '
                  'objects: attn_mask -> FullMask(bool (L,S)) (TriangularCausalMask when it is the '
                  'causal mask), query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); '
                  'an absent mask is the all-ones FullMask(L,S) / LengthMask of full lengths. '
                  'torch 1.13.0a0 CPU float32, eval(), torch.manual_seed(1238) before init and '
                  'inputs.'},
    {'id': 'linear_nomask',
     'type': 'linear',
     'seed': 1239,
     'config': {'query_dimensions': 6, 'feature_map': None, 'eps': 1e-06},
     'inputs': [['queries', [2, 7, 2, 6]], ['keys', [2, 9, 2, 6]], ['values', [2, 9, 2, 5]]],
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) LinearAttention(6); '
                  'forward(queries, keys, values, attn_mask, query_lengths, key_lengths) with '
                  'masks built as fast_transformers.masking objects: attn_mask -> FullMask(bool '
                  '(L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1239) before init and inputs. '
                  'feature_map=None means the default elu_feature_map: phi(x) = elu(x) + 1.'},
    {'id': 'linear_key_lengths',
     'type': 'linear',
     'seed': 1240,
     'config': {'query_dimensions': 4, 'feature_map': None, 'eps': 1e-06},
     'inputs': [['queries', [3, 8, 2, 4]], ['keys', [3, 6, 2, 4]], ['values', [3, 6, 2, 7]]],
     'masks': {'key_lengths': ['lengths', [6, 2, 4]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) LinearAttention(4); '
                  'forward(queries, keys, values, attn_mask, query_lengths, key_lengths) with '
                  'masks built as fast_transformers.masking objects: attn_mask -> FullMask(bool '
                  '(L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1240) before init and inputs. '
                  'feature_map=None means the default elu_feature_map: phi(x) = elu(x) + 1.'},
    {'id': 'causal_linear',
     'type': 'causal_linear',
     'seed': 1241,
     'config': {'query_dimensions': 6, 'feature_map': None, 'eps': 1e-06},
     'inputs': [['queries', [2, 9, 2, 6]], ['keys', [2, 9, 2, 6]], ['values', [2, 9, 2, 5]]],
     'masks': {'attn_mask': ['causal', [9, 9]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) '
                  'CausalLinearAttention(6); forward(queries, keys, values, attn_mask, '
                  'query_lengths, key_lengths) with masks built as fast_transformers.masking '
                  'objects: attn_mask -> FullMask(bool (L,S)) (TriangularCausalMask when it is the '
                  'causal mask), query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); '
                  'an absent mask is the all-ones FullMask(L,S) / LengthMask of full lengths. '
                  'torch 1.13.0a0 CPU float32, eval(), torch.manual_seed(1241) before init and '
                  'inputs. feature_map=None means the default elu_feature_map: phi(x) = elu(x) + '
                  "1. Uses the compiled causal_product_cpu extension, built from the repository's "
                  'own unmodified C++ source.'},
    {'id': 'causal_linear_key_lengths',
     'type': 'causal_linear',
     'seed': 1242,
     'config': {'query_dimensions': 4, 'feature_map': None, 'eps': 1e-06},
     'inputs': [['queries', [2, 8, 3, 4]], ['keys', [2, 8, 3, 4]], ['values', [2, 8, 3, 4]]],
     'masks': {'attn_mask': ['causal', [8, 8]], 'key_lengths': ['lengths', [8, 5]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) '
                  'CausalLinearAttention(4); forward(queries, keys, values, attn_mask, '
                  'query_lengths, key_lengths) with masks built as fast_transformers.masking '
                  'objects: attn_mask -> FullMask(bool (L,S)) (TriangularCausalMask when it is the '
                  'causal mask), query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); '
                  'an absent mask is the all-ones FullMask(L,S) / LengthMask of full lengths. '
                  'torch 1.13.0a0 CPU float32, eval(), torch.manual_seed(1242) before init and '
                  'inputs. feature_map=None means the default elu_feature_map: phi(x) = elu(x) + '
                  "1. Uses the compiled causal_product_cpu extension, built from the repository's "
                  'own unmodified C++ source.'},
    {'id': 'local_ctx5',
     'type': 'local',
     'seed': 1243,
     'config': {'local_context': 5, 'softmax_temp': None, 'attention_dropout': 0.1},
     'inputs': [['queries', [2, 12, 2, 6]], ['keys', [2, 12, 2, 6]], ['values', [2, 12, 2, 5]]],
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) LocalAttention(5); '
                  'forward(queries, keys, values, attn_mask, query_lengths, key_lengths) with '
                  'masks built as fast_transformers.masking objects: attn_mask -> FullMask(bool '
                  '(L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1243) before init and inputs. Uses the '
                  "compiled local_product_cpu extension, built from the repository's own "
                  'unmodified C++ source. Query i attends keys j with i - local_context//2 <= j < '
                  'i + (local_context+1)//2 and j < key_length; masked/out-of-window scores are '
                  '-1e24 (finite) before softmax_temp scaling. Every query here has at least one '
                  'valid key in its window.'},
    {'id': 'local_ctx8_key_lengths',
     'type': 'local',
     'seed': 1244,
     'config': {'local_context': 8, 'softmax_temp': None, 'attention_dropout': 0.1},
     'inputs': [['queries', [3, 10, 2, 4]], ['keys', [3, 10, 2, 4]], ['values', [3, 10, 2, 6]]],
     'masks': {'key_lengths': ['lengths', [10, 8, 7]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) LocalAttention(8); '
                  'forward(queries, keys, values, attn_mask, query_lengths, key_lengths) with '
                  'masks built as fast_transformers.masking objects: attn_mask -> FullMask(bool '
                  '(L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1244) before init and inputs. Uses the '
                  "compiled local_product_cpu extension, built from the repository's own "
                  'unmodified C++ source. Query i attends keys j with i - local_context//2 <= j < '
                  'i + (local_context+1)//2 and j < key_length; masked/out-of-window scores are '
                  '-1e24 (finite) before softmax_temp scaling. Every query here has at least one '
                  'valid key in its window.'},
    {'id': 'local_ctx5_causal',
     'type': 'local',
     'seed': 1245,
     'config': {'local_context': 5, 'softmax_temp': None, 'attention_dropout': 0.1},
     'inputs': [['queries', [2, 11, 2, 8]], ['keys', [2, 11, 2, 8]], ['values', [2, 11, 2, 4]]],
     'masks': {'attn_mask': ['causal', [11, 11]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) LocalAttention(5); '
                  'forward(queries, keys, values, attn_mask, query_lengths, key_lengths) with '
                  'masks built as fast_transformers.masking objects: attn_mask -> FullMask(bool '
                  '(L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1245) before init and inputs. Uses the '
                  "compiled local_product_cpu extension, built from the repository's own "
                  'unmodified C++ source. Query i attends keys j with i - local_context//2 <= j < '
                  'i + (local_context+1)//2 and j < key_length; masked/out-of-window scores are '
                  '-1e24 (finite) before softmax_temp scaling. Every query here has at least one '
                  'valid key in its window. attn_mask is a lower-triangular (causal) FullMask.'},
    {'id': 'exact_topk3',
     'type': 'exact_topk',
     'seed': 1246,
     'config': {'topk': 3, 'softmax_temp': None, 'attention_dropout': 0.1},
     'inputs': [['queries', [2, 7, 2, 6]], ['keys', [2, 10, 2, 6]], ['values', [2, 10, 2, 5]]],
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) '
                  'ExactTopKAttention(topk=3); forward(queries, keys, values, attn_mask, '
                  'query_lengths, key_lengths) with masks built as fast_transformers.masking '
                  'objects: attn_mask -> FullMask(bool (L,S)) (TriangularCausalMask when it is the '
                  'causal mask), query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); '
                  'an absent mask is the all-ones FullMask(L,S) / LengthMask of full lengths. '
                  'torch 1.13.0a0 CPU float32, eval(), torch.manual_seed(1246) before init and '
                  'inputs. Top-k is chosen on the unscaled scores q.k (+mask); inputs were drawn '
                  'so that the k-th and (k+1)-th scores are not near-ties.'},
    {'id': 'exact_topk8_key_lengths',
     'type': 'exact_topk',
     'seed': 1247,
     'config': {'topk': 8, 'softmax_temp': None, 'attention_dropout': 0.1},
     'inputs': [['queries', [2, 9, 2, 4]], ['keys', [2, 12, 2, 4]], ['values', [2, 12, 2, 6]]],
     'masks': {'key_lengths': ['lengths', [12, 10]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) '
                  'ExactTopKAttention(topk=8); forward(queries, keys, values, attn_mask, '
                  'query_lengths, key_lengths) with masks built as fast_transformers.masking '
                  'objects: attn_mask -> FullMask(bool (L,S)) (TriangularCausalMask when it is the '
                  'causal mask), query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); '
                  'an absent mask is the all-ones FullMask(L,S) / LengthMask of full lengths. '
                  'torch 1.13.0a0 CPU float32, eval(), torch.manual_seed(1247) before init and '
                  'inputs. Top-k is chosen on the unscaled scores q.k (+mask); inputs were drawn '
                  'so that the k-th and (k+1)-th scores are not near-ties.'},
    {'id': 'conditional_full_below',
     'type': 'conditional_full',
     'seed': 1248,
     'config': {'other_attention': {'type': 'linear',
                                    'query_dimensions': 4,
                                    'feature_map': None,
                                    'eps': 1e-06},
                'length_limit': 6,
                'softmax_temp': None,
                'attention_dropout': 0.1},
     'inputs': [['queries', [2, 9, 2, 4]], ['keys', [2, 8, 2, 4]], ['values', [2, 8, 2, 5]]],
     'masks': {'key_lengths': ['lengths', [8, 6]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) '
                  'ConditionalFullAttention(LinearAttention(4), length_limit=6); forward(queries, '
                  'keys, values, attn_mask, query_lengths, key_lengths) with masks built as '
                  'fast_transformers.masking objects: attn_mask -> FullMask(bool (L,S)) '
                  '(TriangularCausalMask when it is the causal mask), query_lengths/key_lengths -> '
                  'LengthMask(lengths, max_len=L or S); an absent mask is the all-ones '
                  'FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1248) before init and inputs. Uses other_attention when L > '
                  'length_limit or S > length_limit, FullAttention otherwise.'},
    {'id': 'conditional_full_above',
     'type': 'conditional_full',
     'seed': 1249,
     'config': {'other_attention': {'type': 'linear',
                                    'query_dimensions': 4,
                                    'feature_map': None,
                                    'eps': 1e-06},
                'length_limit': 32,
                'softmax_temp': None,
                'attention_dropout': 0.1},
     'inputs': [['queries', [2, 9, 2, 4]], ['keys', [2, 8, 2, 4]], ['values', [2, 8, 2, 5]]],
     'masks': {'key_lengths': ['lengths', [8, 6]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) '
                  'ConditionalFullAttention(LinearAttention(4), length_limit=32); forward(queries, '
                  'keys, values, attn_mask, query_lengths, key_lengths) with masks built as '
                  'fast_transformers.masking objects: attn_mask -> FullMask(bool (L,S)) '
                  '(TriangularCausalMask when it is the causal mask), query_lengths/key_lengths -> '
                  'LengthMask(lengths, max_len=L or S); an absent mask is the all-ones '
                  'FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1249) before init and inputs. Uses other_attention when L > '
                  'length_limit or S > length_limit, FullAttention otherwise.'},
    {'id': 'aft_full',
     'type': 'aft_full',
     'seed': 1250,
     'config': {'max_sequence_length': 12, 'aft_parameterization': 5},
     'inputs': [['queries', [2, 7, 2, 6]], ['keys', [2, 9, 2, 6]], ['values', [2, 9, 2, 6]]],
     'post': 'redraw_uv',
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) '
                  'AFTFullAttention(max_sequence_length=12, aft_parameterization=5); '
                  'forward(queries, keys, values, attn_mask, query_lengths, key_lengths) with '
                  'masks built as fast_transformers.masking objects: attn_mask -> FullMask(bool '
                  '(L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1250) before init and inputs. Parameters '
                  'u, v re-drawn from N(0,1) after construction (the default 0.01*randn makes the '
                  'position bias vanish); see weights.safetensors. Note the reference multiplies '
                  "keys by w = u[:L] v[:S]^T (not adds). No masks: with masks the reference's -inf "
                  '* w gives NaN.'},
    {'id': 'aft_full_square',
     'type': 'aft_full',
     'seed': 1251,
     'config': {'max_sequence_length': 8, 'aft_parameterization': 8},
     'inputs': [['queries', [1, 8, 3, 4]], ['keys', [1, 8, 3, 4]], ['values', [1, 8, 3, 4]]],
     'post': 'redraw_uv',
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) '
                  'AFTFullAttention(max_sequence_length=8, aft_parameterization=8); '
                  'forward(queries, keys, values, attn_mask, query_lengths, key_lengths) with '
                  'masks built as fast_transformers.masking objects: attn_mask -> FullMask(bool '
                  '(L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1251) before init and inputs. Parameters '
                  'u, v re-drawn from N(0,1) after construction (the default 0.01*randn makes the '
                  'position bias vanish); see weights.safetensors. Note the reference multiplies '
                  "keys by w = u[:L] v[:S]^T (not adds). No masks: with masks the reference's -inf "
                  '* w gives NaN.'},
    {'id': 'aft_simple',
     'type': 'aft_simple',
     'seed': 1252,
     'config': {},
     'inputs': [['queries', [2, 7, 2, 5]], ['keys', [2, 9, 2, 5]], ['values', [2, 9, 2, 5]]],
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) '
                  'AFTSimpleAttention(); forward(queries, keys, values, attn_mask, query_lengths, '
                  'key_lengths) with masks built as fast_transformers.masking objects: attn_mask '
                  '-> FullMask(bool (L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1252) before init and inputs.'},
    {'id': 'aft_simple_causal',
     'type': 'aft_simple',
     'seed': 1253,
     'config': {},
     'inputs': [['queries', [2, 8, 2, 4]], ['keys', [2, 8, 2, 4]], ['values', [2, 8, 2, 4]]],
     'masks': {'attn_mask': ['causal', [8, 8]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) '
                  'AFTSimpleAttention(); forward(queries, keys, values, attn_mask, query_lengths, '
                  'key_lengths) with masks built as fast_transformers.masking objects: attn_mask '
                  '-> FullMask(bool (L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1253) before init and inputs. Causal '
                  '(lower-triangular attn_mask) branch: cumulative softmax.'},
    {'id': 'aft_simple_key_lengths',
     'type': 'aft_simple',
     'seed': 1254,
     'config': {},
     'inputs': [['queries', [3, 6, 1, 6]], ['keys', [3, 7, 1, 6]], ['values', [3, 7, 1, 6]]],
     'masks': {'key_lengths': ['lengths', [7, 5, 2]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) '
                  'AFTSimpleAttention(); forward(queries, keys, values, attn_mask, query_lengths, '
                  'key_lengths) with masks built as fast_transformers.masking objects: attn_mask '
                  '-> FullMask(bool (L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1254) before init and inputs.'},
    {'id': 'attention_layer_full',
     'type': 'attention_layer',
     'seed': 1255,
     'config': {'attention': {'type': 'full', 'softmax_temp': None, 'attention_dropout': 0.1},
                'd_model': 16,
                'n_heads': 4,
                'd_keys': 6,
                'd_values': 5,
                'd_model_keys': None},
     'inputs': [['queries', [2, 7, 16]], ['keys', [2, 9, 16]], ['values', [2, 9, 16]]],
     'masks': {'key_lengths': ['lengths', [9, 6]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) AttentionLayer(full '
                  'attention, d_model=16, n_heads=4, d_keys=6, d_values=5); forward(queries, keys, '
                  'values, attn_mask, query_lengths, key_lengths) with masks built as '
                  'fast_transformers.masking objects: attn_mask -> FullMask(bool (L,S)) '
                  '(TriangularCausalMask when it is the causal mask), query_lengths/key_lengths -> '
                  'LengthMask(lengths, max_len=L or S); an absent mask is the all-ones '
                  'FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1255) before init and inputs. Inputs are '
                  '(N,L,d_model)/(N,S,d_model); weights are the four Linear projections.'},
    {'id': 'attention_layer_causal',
     'type': 'attention_layer',
     'seed': 1256,
     'config': {'attention': {'type': 'full', 'softmax_temp': None, 'attention_dropout': 0.1},
                'd_model': 12,
                'n_heads': 2,
                'd_keys': None,
                'd_values': None,
                'd_model_keys': None},
     'inputs': [['queries', [2, 8, 12]], ['keys', [2, 8, 12]], ['values', [2, 8, 12]]],
     'masks': {'attn_mask': ['causal', [8, 8]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) AttentionLayer(full '
                  'attention, d_model=12, n_heads=2, d_keys=None, d_values=None); forward(queries, '
                  'keys, values, attn_mask, query_lengths, key_lengths) with masks built as '
                  'fast_transformers.masking objects: attn_mask -> FullMask(bool (L,S)) '
                  '(TriangularCausalMask when it is the causal mask), query_lengths/key_lengths -> '
                  'LengthMask(lengths, max_len=L or S); an absent mask is the all-ones '
                  'FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1256) before init and inputs. Inputs are '
                  '(N,L,d_model)/(N,S,d_model); weights are the four Linear projections.'},
    {'id': 'attention_layer_linear',
     'type': 'attention_layer',
     'seed': 1257,
     'config': {'attention': {'type': 'linear',
                              'query_dimensions': 4,
                              'feature_map': None,
                              'eps': 1e-06},
                'd_model': 16,
                'n_heads': 2,
                'd_keys': 4,
                'd_values': 8,
                'd_model_keys': None},
     'inputs': [['queries', [2, 6, 16]], ['keys', [2, 10, 16]], ['values', [2, 10, 16]]],
     'masks': {'key_lengths': ['lengths', [10, 7]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) '
                  'AttentionLayer(linear attention, d_model=16, n_heads=2, d_keys=4, d_values=8); '
                  'forward(queries, keys, values, attn_mask, query_lengths, key_lengths) with '
                  'masks built as fast_transformers.masking objects: attn_mask -> FullMask(bool '
                  '(L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1257) before init and inputs. Inputs are '
                  '(N,L,d_model)/(N,S,d_model); weights are the four Linear projections.'},
    {'id': 'area_mean_sum_1d',
     'type': 'area',
     'seed': 1258,
     'config': {'key_query_size': 8,
                'area_key_mode': 'mean',
                'area_value_mode': 'sum',
                'memory_height': 1,
                'memory_width': 9,
                'max_area_height': 1,
                'max_area_width': 3,
                'dropout_rate': 0.0,
                'top_k_areas': 0},
     'inputs': [['q', [2, 6, 8]], ['k', [2, 9, 8]], ['v', [2, 9, 5]]],
     'tol': [0.0001, 1e-05],
     'reference': 'area_attention 0.1.0 (mikomel/area-attention @06f219e) AreaAttention(**config); '
                  "torch 1.13.0a0 CPU float32, eval() (mode 'sample*' therefore uses the area "
                  'mean, no noise), torch.manual_seed(1258) before init and inputs.'},
    {'id': 'area_max_mean_2d',
     'type': 'area',
     'seed': 1259,
     'config': {'key_query_size': 8,
                'area_key_mode': 'max',
                'area_value_mode': 'mean',
                'memory_height': 3,
                'memory_width': 4,
                'max_area_height': 2,
                'max_area_width': 2,
                'dropout_rate': 0.0,
                'top_k_areas': 0},
     'inputs': [['q', [2, 6, 8]], ['k', [2, 12, 8]], ['v', [2, 12, 5]]],
     'tol': [0.0001, 1e-05],
     'reference': 'area_attention 0.1.0 (mikomel/area-attention @06f219e) AreaAttention(**config); '
                  "torch 1.13.0a0 CPU float32, eval() (mode 'sample*' therefore uses the area "
                  'mean, no noise), torch.manual_seed(1259) before init and inputs.'},
    {'id': 'area_mean_max_2d_topk',
     'type': 'area',
     'seed': 1260,
     'config': {'key_query_size': 8,
                'area_key_mode': 'mean',
                'area_value_mode': 'max',
                'memory_height': 4,
                'memory_width': 3,
                'max_area_height': 3,
                'max_area_width': 2,
                'dropout_rate': 0.0,
                'top_k_areas': 3},
     'inputs': [['q', [2, 6, 8]], ['k', [2, 12, 8]], ['v', [2, 12, 5]]],
     'tol': [0.0001, 1e-05],
     'reference': 'area_attention 0.1.0 (mikomel/area-attention @06f219e) AreaAttention(**config); '
                  "torch 1.13.0a0 CPU float32, eval() (mode 'sample*' therefore uses the area "
                  'mean, no noise), torch.manual_seed(1260) before init and inputs. Inputs were '
                  'drawn so that the top-k threshold is not a near-tie.'},
    {'id': 'area_concat_sum_1d',
     'type': 'area',
     'seed': 1261,
     'config': {'key_query_size': 8,
                'area_key_mode': 'concat',
                'area_value_mode': 'sum',
                'memory_height': 1,
                'memory_width': 9,
                'max_area_height': 1,
                'max_area_width': 3,
                'dropout_rate': 0.0,
                'top_k_areas': 0},
     'inputs': [['q', [2, 6, 8]], ['k', [2, 9, 8]], ['v', [2, 9, 5]]],
     'scale': {'k': 0.5},
     'tol': [0.001, 0.0001],
     'reference': 'area_attention 0.1.0 (mikomel/area-attention @06f219e) AreaAttention(**config); '
                  "torch 1.13.0a0 CPU float32, eval() (mode 'sample*' therefore uses the area "
                  'mean, no noise), torch.manual_seed(1261) before init and inputs. k = 0.5*randn '
                  'and a looser tolerance: area_std of small areas comes from a cancelling '
                  'E[x^2]-E[x]^2 on float32 integral images (cumsum over width, then height), i.e. '
                  'it is mostly rounding noise plus the 1e-6 epsilon.'},
    {'id': 'area_max_concat_mean_2d',
     'type': 'area',
     'seed': 1262,
     'config': {'key_query_size': 8,
                'area_key_mode': 'max_concat',
                'area_value_mode': 'mean',
                'memory_height': 3,
                'memory_width': 4,
                'max_area_height': 2,
                'max_area_width': 2,
                'dropout_rate': 0.0,
                'top_k_areas': 0},
     'inputs': [['q', [2, 6, 8]], ['k', [2, 12, 8]], ['v', [2, 12, 5]]],
     'tol': [0.0001, 1e-05],
     'reference': 'area_attention 0.1.0 (mikomel/area-attention @06f219e) AreaAttention(**config); '
                  "torch 1.13.0a0 CPU float32, eval() (mode 'sample*' therefore uses the area "
                  'mean, no noise), torch.manual_seed(1262) before init and inputs.'},
    {'id': 'area_sum_mean_2d_topk',
     'type': 'area',
     'seed': 2263,
     'config': {'key_query_size': 8,
                'area_key_mode': 'sum',
                'area_value_mode': 'mean',
                'memory_height': 4,
                'memory_width': 3,
                'max_area_height': 3,
                'max_area_width': 2,
                'dropout_rate': 0.0,
                'top_k_areas': 4},
     'inputs': [['q', [2, 6, 8]], ['k', [2, 12, 8]], ['v', [2, 12, 5]]],
     'scale': {'k': 0.5},
     'tol': [0.001, 0.0001],
     'reference': 'area_attention 0.1.0 (mikomel/area-attention @06f219e) AreaAttention(**config); '
                  "torch 1.13.0a0 CPU float32, eval() (mode 'sample*' therefore uses the area "
                  'mean, no noise), torch.manual_seed(2263) before init and inputs. Inputs were '
                  'drawn so that the top-k threshold is not a near-tie. k = 0.5*randn and a looser '
                  'tolerance: area_std of small areas comes from a cancelling E[x^2]-E[x]^2 on '
                  'float32 integral images (cumsum over width, then height), i.e. it is mostly '
                  'rounding noise plus the 1e-6 epsilon.'},
    {'id': 'area_sample_sum_1d_topk',
     'type': 'area',
     'seed': 1264,
     'config': {'key_query_size': 8,
                'area_key_mode': 'sample',
                'area_value_mode': 'sum',
                'memory_height': 1,
                'memory_width': 9,
                'max_area_height': 1,
                'max_area_width': 3,
                'dropout_rate': 0.0,
                'top_k_areas': 2},
     'inputs': [['q', [2, 6, 8]], ['k', [2, 9, 8]], ['v', [2, 9, 5]]],
     'tol': [0.0001, 1e-05],
     'reference': 'area_attention 0.1.0 (mikomel/area-attention @06f219e) AreaAttention(**config); '
                  "torch 1.13.0a0 CPU float32, eval() (mode 'sample*' therefore uses the area "
                  'mean, no noise), torch.manual_seed(1264) before init and inputs. Inputs were '
                  'drawn so that the top-k threshold is not a near-tie.'},
    {'id': 'area_sample_concat_mean_2d',
     'type': 'area',
     'seed': 1265,
     'config': {'key_query_size': 8,
                'area_key_mode': 'sample_concat',
                'area_value_mode': 'mean',
                'memory_height': 3,
                'memory_width': 4,
                'max_area_height': 2,
                'max_area_width': 2,
                'dropout_rate': 0.0,
                'top_k_areas': 0},
     'inputs': [['q', [2, 6, 8]], ['k', [2, 12, 8]], ['v', [2, 12, 5]]],
     'tol': [0.0001, 1e-05],
     'reference': 'area_attention 0.1.0 (mikomel/area-attention @06f219e) AreaAttention(**config); '
                  "torch 1.13.0a0 CPU float32, eval() (mode 'sample*' therefore uses the area "
                  'mean, no noise), torch.manual_seed(1265) before init and inputs.'},
    {'id': 'area_sample_sum_sum_1d_topk',
     'type': 'area',
     'seed': 2266,
     'config': {'key_query_size': 8,
                'area_key_mode': 'sample_sum',
                'area_value_mode': 'sum',
                'memory_height': 1,
                'memory_width': 9,
                'max_area_height': 1,
                'max_area_width': 3,
                'dropout_rate': 0.0,
                'top_k_areas': 5},
     'inputs': [['q', [2, 6, 8]], ['k', [2, 9, 8]], ['v', [2, 9, 5]]],
     'tol': [0.0001, 1e-05],
     'reference': 'area_attention 0.1.0 (mikomel/area-attention @06f219e) AreaAttention(**config); '
                  "torch 1.13.0a0 CPU float32, eval() (mode 'sample*' therefore uses the area "
                  'mean, no noise), torch.manual_seed(2266) before init and inputs. Inputs were '
                  'drawn so that the top-k threshold is not a near-tie.'},
    {'id': 'area_max_sum_2d_topk',
     'type': 'area',
     'seed': 1267,
     'config': {'key_query_size': 8,
                'area_key_mode': 'max',
                'area_value_mode': 'sum',
                'memory_height': 3,
                'memory_width': 4,
                'max_area_height': 2,
                'max_area_width': 2,
                'dropout_rate': 0.0,
                'top_k_areas': 3},
     'inputs': [['q', [2, 6, 8]], ['k', [2, 12, 8]], ['v', [2, 12, 5]]],
     'tol': [0.0001, 1e-05],
     'reference': 'area_attention 0.1.0 (mikomel/area-attention @06f219e) AreaAttention(**config); '
                  "torch 1.13.0a0 CPU float32, eval() (mode 'sample*' therefore uses the area "
                  'mean, no noise), torch.manual_seed(1267) before init and inputs. Inputs were '
                  'drawn so that the top-k threshold is not a near-tie.'},
    {'id': 'multi_head_area_2d',
     'type': 'multi_head_area',
     'seed': 1268,
     'config': {'area_attention': {'key_query_size': 4,
                                   'area_key_mode': 'mean',
                                   'area_value_mode': 'sum',
                                   'max_area_height': 2,
                                   'max_area_width': 2,
                                   'memory_height': 3,
                                   'memory_width': 4,
                                   'dropout_rate': 0.0,
                                   'top_k_areas': 0},
                'num_heads': 2,
                'key_query_size': 8,
                'key_query_size_hidden': 4,
                'value_size': 6,
                'value_size_hidden': 5},
     'inputs': [['q', [2, 5, 8]], ['k', [2, 12, 8]], ['v', [2, 12, 6]]],
     'tol': [0.0001, 1e-05],
     'reference': 'area_attention 0.1.0 (mikomel/area-attention @06f219e) '
                  "MultiHeadAreaAttention(AreaAttention(**config['area_attention']), num_heads, "
                  'key_query_size, key_query_size_hidden, value_size, value_size_hidden); torch '
                  "1.13.0a0 CPU float32, eval() (mode 'sample*' therefore uses the area mean, no "
                  'noise), torch.manual_seed(1268) before init and inputs.'},
    {'id': 'multi_head_area_concat_1d_topk',
     'type': 'multi_head_area',
     'seed': 21269,
     'config': {'area_attention': {'key_query_size': 4,
                                   'area_key_mode': 'concat',
                                   'area_value_mode': 'mean',
                                   'max_area_height': 1,
                                   'max_area_width': 3,
                                   'memory_height': 1,
                                   'memory_width': 8,
                                   'dropout_rate': 0.0,
                                   'top_k_areas': 3},
                'num_heads': 3,
                'key_query_size': 6,
                'key_query_size_hidden': 4,
                'value_size': 5,
                'value_size_hidden': 4},
     'inputs': [['q', [2, 5, 6]], ['k', [2, 8, 6]], ['v', [2, 8, 5]]],
     'tol': [0.001, 0.0001],
     'reference': 'area_attention 0.1.0 (mikomel/area-attention @06f219e) '
                  "MultiHeadAreaAttention(AreaAttention(**config['area_attention']), num_heads, "
                  'key_query_size, key_query_size_hidden, value_size, value_size_hidden); torch '
                  "1.13.0a0 CPU float32, eval() (mode 'sample*' therefore uses the area mean, no "
                  'noise), torch.manual_seed(21269) before init and inputs. Looser tolerance: key '
                  'mode uses area_std (rounding-noise dominated for small areas).'},
    {'id': 'axial_image_sum',
     'type': 'axial',
     'seed': 1270,
     'config': {'dim': 8,
                'num_dimensions': 2,
                'heads': 2,
                'dim_heads': None,
                'dim_index': 1,
                'sum_axial_out': True},
     'inputs': [['x', [2, 8, 5, 6]]],
     'tol': [0.0001, 1e-05],
     'reference': 'axial_attention 0.6.1 (lucidrains/axial-attention @eff2c10) '
                  'AxialAttention(**config); torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1270) before init and inputs.'},
    {'id': 'axial_image_seq_dim_heads',
     'type': 'axial',
     'seed': 1271,
     'config': {'dim': 8,
                'num_dimensions': 2,
                'heads': 2,
                'dim_heads': 5,
                'dim_index': 1,
                'sum_axial_out': False},
     'inputs': [['x', [1, 8, 6, 5]]],
     'tol': [0.0001, 1e-05],
     'reference': 'axial_attention 0.6.1 (lucidrains/axial-attention @eff2c10) '
                  'AxialAttention(**config); torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1271) before init and inputs.'},
    {'id': 'axial_channel_last_seq',
     'type': 'axial',
     'seed': 1272,
     'config': {'dim': 8,
                'num_dimensions': 2,
                'heads': 4,
                'dim_heads': 5,
                'dim_index': -1,
                'sum_axial_out': False},
     'inputs': [['x', [2, 5, 6, 8]]],
     'tol': [0.0001, 1e-05],
     'reference': 'axial_attention 0.6.1 (lucidrains/axial-attention @eff2c10) '
                  'AxialAttention(**config); torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1272) before init and inputs.'},
    {'id': 'axial_channel_last_sum',
     'type': 'axial',
     'seed': 1273,
     'config': {'dim': 8,
                'num_dimensions': 2,
                'heads': 2,
                'dim_heads': None,
                'dim_index': -1,
                'sum_axial_out': True},
     'inputs': [['x', [1, 5, 7, 8]]],
     'tol': [0.0001, 1e-05],
     'reference': 'axial_attention 0.6.1 (lucidrains/axial-attention @eff2c10) '
                  'AxialAttention(**config); torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1273) before init and inputs.'},
    {'id': 'axial_video_sum',
     'type': 'axial',
     'seed': 1274,
     'config': {'dim': 8,
                'num_dimensions': 3,
                'heads': 2,
                'dim_heads': None,
                'dim_index': 1,
                'sum_axial_out': True},
     'inputs': [['x', [1, 8, 5, 5, 6]]],
     'tol': [0.0001, 1e-05],
     'reference': 'axial_attention 0.6.1 (lucidrains/axial-attention @eff2c10) '
                  'AxialAttention(**config); torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1274) before init and inputs.'},
    {'id': 'axial_video_seq_dim_heads',
     'type': 'axial',
     'seed': 1275,
     'config': {'dim': 6,
                'num_dimensions': 3,
                'heads': 3,
                'dim_heads': 4,
                'dim_index': -1,
                'sum_axial_out': False},
     'inputs': [['x', [1, 5, 6, 5, 6]]],
     'tol': [0.0001, 1e-05],
     'reference': 'axial_attention 0.6.1 (lucidrains/axial-attention @eff2c10) '
                  'AxialAttention(**config); torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1275) before init and inputs.'},
    {'id': 'axial_image_transformer_d1_rev',
     'type': 'axial_image_transformer',
     'seed': 1276,
     'config': {'dim': 8,
                'depth': 1,
                'heads': 2,
                'dim_heads': None,
                'dim_index': 1,
                'reversible': True,
                'axial_pos_emb_shape': None},
     'inputs': [['x', [1, 8, 5, 6]]],
     'post': 'perturb_norms',
     'tol': [0.0001, 0.0001],
     'reference': 'axial_attention 0.6.1 (lucidrains/axial-attention @eff2c10) '
                  'AxialImageTransformer(**config); torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1276) before init and inputs. LayerNorm/ChanLayerNorm affine '
                  'parameters were perturbed away from their ones/zeros init (see '
                  'weights.safetensors).'},
    {'id': 'axial_image_transformer_d1_seq_pos',
     'type': 'axial_image_transformer',
     'seed': 1277,
     'config': {'dim': 8,
                'depth': 1,
                'heads': 2,
                'dim_heads': None,
                'dim_index': 1,
                'reversible': False,
                'axial_pos_emb_shape': [5, 6]},
     'inputs': [['x', [1, 8, 5, 6]]],
     'post': 'perturb_norms',
     'tol': [0.0001, 0.0001],
     'reference': 'axial_attention 0.6.1 (lucidrains/axial-attention @eff2c10) '
                  'AxialImageTransformer(**config); torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1277) before init and inputs. LayerNorm/ChanLayerNorm affine '
                  'parameters were perturbed away from their ones/zeros init (see '
                  'weights.safetensors).'},
    {'id': 'axial_image_transformer_d2_seq',
     'type': 'axial_image_transformer',
     'seed': 1278,
     'config': {'dim': 8,
                'depth': 2,
                'heads': 2,
                'dim_heads': 5,
                'dim_index': 1,
                'reversible': False,
                'axial_pos_emb_shape': None},
     'inputs': [['x', [1, 8, 5, 6]]],
     'post': 'perturb_norms',
     'tol': [0.0001, 0.0001],
     'reference': 'axial_attention 0.6.1 (lucidrains/axial-attention @eff2c10) '
                  'AxialImageTransformer(**config); torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1278) before init and inputs. LayerNorm/ChanLayerNorm affine '
                  'parameters were perturbed away from their ones/zeros init (see '
                  'weights.safetensors).'},
    {'id': 'axial_image_transformer_d2_rev_pos',
     'type': 'axial_image_transformer',
     'seed': 1279,
     'config': {'dim': 8,
                'depth': 2,
                'heads': 2,
                'dim_heads': None,
                'dim_index': 1,
                'reversible': True,
                'axial_pos_emb_shape': [5, 6]},
     'inputs': [['x', [1, 8, 5, 6]]],
     'post': 'perturb_norms',
     'tol': [0.0001, 0.0001],
     'reference': 'axial_attention 0.6.1 (lucidrains/axial-attention @eff2c10) '
                  'AxialImageTransformer(**config); torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1279) before init and inputs. LayerNorm/ChanLayerNorm affine '
                  'parameters were perturbed away from their ones/zeros init (see '
                  'weights.safetensors).'},
    {'id': 'axial_positional_embedding',
     'type': 'axial_positional_embedding',
     'seed': 1280,
     'config': {'dim': 6, 'shape': [5, 6], 'emb_dim_index': 1},
     'inputs': [['x', [2, 6, 5, 6]]],
     'tol': [0.0001, 1e-05],
     'reference': 'axial_attention 0.6.1 (lucidrains/axial-attention @eff2c10) '
                  'AxialPositionalEmbedding(dim, shape, emb_dim_index); torch 1.13.0a0 CPU '
                  'float32, eval(), torch.manual_seed(1280) before init and inputs.'},
    {'id': 'compositional_basic',
     'type': 'compositional',
     'seed': 1281,
     'config': {'dim': 16,
                'dim_head': 4,
                'num_searches': 3,
                'num_retrievals': 2,
                'dropout': 0.0,
                'prenorm': False,
                'causal': False},
     'inputs': [['x', [2, 7, 16]]],
     'tol': [0.0001, 1e-05],
     'reference': 'compositional_attention_pytorch 0.0.1 '
                  '(lucidrains/compositional-attention-pytorch @e4e5954) '
                  'CompositionalAttention(**config); torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1281) before init and inputs. einops/einops_exts replaced by '
                  'a shim implementing the used rearrange patterns exactly. mask (B,N) bool: true '
                  '= key may be attended.'},
    {'id': 'compositional_mask',
     'type': 'compositional',
     'seed': 1282,
     'config': {'dim': 16,
                'dim_head': 4,
                'num_searches': 3,
                'num_retrievals': 2,
                'dropout': 0.0,
                'prenorm': False,
                'causal': False},
     'inputs': [['x', [3, 8, 16]]],
     'masks': {'mask': ['bool',
                        [[1, 0, 0, 1, 1, 1, 0, 0],
                         [1, 1, 1, 0, 1, 0, 0, 0],
                         [1, 1, 0, 0, 0, 0, 0, 0]]]},
     'tol': [0.0001, 1e-05],
     'reference': 'compositional_attention_pytorch 0.0.1 '
                  '(lucidrains/compositional-attention-pytorch @e4e5954) '
                  'CompositionalAttention(**config); torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1282) before init and inputs. einops/einops_exts replaced by '
                  'a shim implementing the used rearrange patterns exactly. mask (B,N) bool: true '
                  '= key may be attended.'},
    {'id': 'compositional_causal',
     'type': 'compositional',
     'seed': 1283,
     'config': {'dim': 16,
                'dim_head': 4,
                'num_searches': 3,
                'num_retrievals': 2,
                'dropout': 0.0,
                'prenorm': False,
                'causal': True},
     'inputs': [['x', [2, 9, 16]]],
     'tol': [0.0001, 1e-05],
     'reference': 'compositional_attention_pytorch 0.0.1 '
                  '(lucidrains/compositional-attention-pytorch @e4e5954) '
                  'CompositionalAttention(**config); torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1283) before init and inputs. einops/einops_exts replaced by '
                  'a shim implementing the used rearrange patterns exactly. mask (B,N) bool: true '
                  '= key may be attended.'},
    {'id': 'compositional_prenorm_mask',
     'type': 'compositional',
     'seed': 1284,
     'config': {'dim': 16,
                'dim_head': 4,
                'num_searches': 3,
                'num_retrievals': 2,
                'dropout': 0.0,
                'prenorm': True,
                'causal': False},
     'inputs': [['x', [2, 6, 16]]],
     'masks': {'mask': ['bool', [[1, 1, 0, 1, 0, 0], [1, 0, 1, 1, 1, 1]]]},
     'post': 'perturb_norms',
     'tol': [0.0001, 1e-05],
     'reference': 'compositional_attention_pytorch 0.0.1 '
                  '(lucidrains/compositional-attention-pytorch @e4e5954) '
                  'CompositionalAttention(**config); torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1284) before init and inputs. einops/einops_exts replaced by '
                  'a shim implementing the used rearrange patterns exactly. mask (B,N) bool: true '
                  '= key may be attended. LayerNorm affine parameters perturbed from ones/zeros '
                  'init.'},
    {'id': 'compositional_fused',
     'type': 'compositional',
     'seed': 1401,
     'config': {'dim': 32,
                'dim_head': 16,
                'num_searches': 3,
                'num_retrievals': 2,
                'dropout': 0.0,
                'prenorm': False,
                'causal': False},
     'inputs': [['x', [2, 40, 32]]],
     'tol': [0.0001, 1e-05],
     'reference': 'compositional_attention_pytorch 0.0.1 '
                  '(lucidrains/compositional-attention-pytorch @e4e5954) '
                  'CompositionalAttention(**config); torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1401) before init and inputs. einops/einops_exts replaced by '
                  'a shim implementing the used rearrange patterns exactly. mask (B,N) bool: true '
                  '= key may be attended. Sized for attnd\'s fused path (searches as one full '
                  'attention, R*dim_head a multiple of 16, N >= 8).'},
    {'id': 'compositional_fused_causal',
     'type': 'compositional',
     'seed': 1402,
     'config': {'dim': 32,
                'dim_head': 16,
                'num_searches': 3,
                'num_retrievals': 2,
                'dropout': 0.0,
                'prenorm': False,
                'causal': True},
     'inputs': [['x', [2, 37, 32]]],
     'tol': [0.0001, 1e-05],
     'reference': 'compositional_attention_pytorch 0.0.1 '
                  '(lucidrains/compositional-attention-pytorch @e4e5954) '
                  'CompositionalAttention(**config); torch 1.13.0a0 CPU float32, eval(), '
                  'torch.manual_seed(1402) before init and inputs. einops/einops_exts replaced by '
                  'a shim implementing the used rearrange patterns exactly. mask (B,N) bool: true '
                  '= key may be attended. Sized for attnd\'s fused path (searches as one full '
                  'attention, R*dim_head a multiple of 16, N >= 8).'},
    {'id': 'linear_self_noncausal',
     'type': 'linear_self',
     'seed': 1285,
     'config': {'dim': 16,
                'heads': 2,
                'causal': False,
                'dim_head': None,
                'one_kv_head': False,
                'psi_fn': 'elu1',
                'blindspot_size': 1,
                'n_local_attn_heads': 0,
                'receives_context': False,
                'dropout': 0.0,
                'attn_dropout': 0.0},
     'inputs': [['x', [2, 9, 16]]],
     'tol': [0.0001, 1e-05],
     'reference': 'linear_attention_transformer 0.12.1 (lucidrains/linear-attention-transformer '
                  "@1033093) SelfAttention(**config) with psi_fn 'elu1' = DEFAULT_PSI (elu(x)+1), "
                  "'relu' = F.relu (psi_fn is only used when causal); torch 1.13.0a0 CPU float32, "
                  'eval(), torch.manual_seed(1285) before init and inputs. input_mask (B,N) bool: '
                  'true = keep. Imports of local_attention, linformer, product_key_memory, '
                  'axial_positional_embedding stubbed (unused with n_local_attn_heads=0); '
                  'fractions.gcd aliased to math.gcd.'},
    {'id': 'linear_self_noncausal_mask_one_kv',
     'type': 'linear_self',
     'seed': 1286,
     'config': {'dim': 16,
                'heads': 4,
                'causal': False,
                'dim_head': None,
                'one_kv_head': True,
                'psi_fn': 'elu1',
                'blindspot_size': 1,
                'n_local_attn_heads': 0,
                'receives_context': False,
                'dropout': 0.0,
                'attn_dropout': 0.0},
     'inputs': [['x', [2, 10, 16]]],
     'masks': {'input_mask': ['bool',
                              [[1, 1, 0, 0, 1, 1, 0, 1, 1, 0], [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]]]},
     'tol': [0.0001, 1e-05],
     'reference': 'linear_attention_transformer 0.12.1 (lucidrains/linear-attention-transformer '
                  "@1033093) SelfAttention(**config) with psi_fn 'elu1' = DEFAULT_PSI (elu(x)+1), "
                  "'relu' = F.relu (psi_fn is only used when causal); torch 1.13.0a0 CPU float32, "
                  'eval(), torch.manual_seed(1286) before init and inputs. input_mask (B,N) bool: '
                  'true = keep. Imports of local_attention, linformer, product_key_memory, '
                  'axial_positional_embedding stubbed (unused with n_local_attn_heads=0); '
                  'fractions.gcd aliased to math.gcd.'},
    {'id': 'linear_self_noncausal_mask_dim_head',
     'type': 'linear_self',
     'seed': 1287,
     'config': {'dim': 12,
                'heads': 3,
                'causal': False,
                'dim_head': 5,
                'one_kv_head': False,
                'psi_fn': 'relu',
                'blindspot_size': 1,
                'n_local_attn_heads': 0,
                'receives_context': False,
                'dropout': 0.0,
                'attn_dropout': 0.0},
     'inputs': [['x', [3, 7, 12]]],
     'masks': {'input_mask': ['bool',
                              [[1, 0, 1, 1, 0, 0, 0],
                               [1, 1, 1, 0, 0, 0, 0],
                               [1, 1, 1, 1, 1, 0, 0]]]},
     'tol': [0.0001, 1e-05],
     'reference': 'linear_attention_transformer 0.12.1 (lucidrains/linear-attention-transformer '
                  "@1033093) SelfAttention(**config) with psi_fn 'elu1' = DEFAULT_PSI (elu(x)+1), "
                  "'relu' = F.relu (psi_fn is only used when causal); torch 1.13.0a0 CPU float32, "
                  'eval(), torch.manual_seed(1287) before init and inputs. input_mask (B,N) bool: '
                  'true = keep. Imports of local_attention, linformer, product_key_memory, '
                  'axial_positional_embedding stubbed (unused with n_local_attn_heads=0); '
                  'fractions.gcd aliased to math.gcd.'},
    {'id': 'linear_self_causal_b1_elu',
     'type': 'linear_self',
     'seed': 1288,
     'config': {'dim': 16,
                'heads': 2,
                'causal': True,
                'dim_head': None,
                'one_kv_head': False,
                'psi_fn': 'elu1',
                'blindspot_size': 1,
                'n_local_attn_heads': 0,
                'receives_context': False,
                'dropout': 0.0,
                'attn_dropout': 0.0},
     'inputs': [['x', [2, 9, 16]]],
     'tol': [0.0001, 1e-05],
     'reference': 'linear_attention_transformer 0.12.1 (lucidrains/linear-attention-transformer '
                  "@1033093) SelfAttention(**config) with psi_fn 'elu1' = DEFAULT_PSI (elu(x)+1), "
                  "'relu' = F.relu (psi_fn is only used when causal); torch 1.13.0a0 CPU float32, "
                  'eval(), torch.manual_seed(1288) before init and inputs. input_mask (B,N) bool: '
                  'true = keep. Imports of local_attention, linformer, product_key_memory, '
                  'axial_positional_embedding stubbed (unused with n_local_attn_heads=0); '
                  'fractions.gcd aliased to math.gcd.'},
    {'id': 'linear_self_causal_b4_relu',
     'type': 'linear_self',
     'seed': 1289,
     'config': {'dim': 12,
                'heads': 2,
                'causal': True,
                'dim_head': None,
                'one_kv_head': False,
                'psi_fn': 'relu',
                'blindspot_size': 4,
                'n_local_attn_heads': 0,
                'receives_context': False,
                'dropout': 0.0,
                'attn_dropout': 0.0},
     'inputs': [['x', [2, 12, 12]]],
     'tol': [0.0001, 1e-05],
     'reference': 'linear_attention_transformer 0.12.1 (lucidrains/linear-attention-transformer '
                  "@1033093) SelfAttention(**config) with psi_fn 'elu1' = DEFAULT_PSI (elu(x)+1), "
                  "'relu' = F.relu (psi_fn is only used when causal); torch 1.13.0a0 CPU float32, "
                  'eval(), torch.manual_seed(1289) before init and inputs. input_mask (B,N) bool: '
                  'true = keep. Imports of local_attention, linformer, product_key_memory, '
                  'axial_positional_embedding stubbed (unused with n_local_attn_heads=0); '
                  'fractions.gcd aliased to math.gcd.'},
    {'id': 'linear_self_causal_one_kv_b4_elu',
     'type': 'linear_self',
     'seed': 1290,
     'config': {'dim': 16,
                'heads': 4,
                'causal': True,
                'dim_head': None,
                'one_kv_head': True,
                'psi_fn': 'elu1',
                'blindspot_size': 4,
                'n_local_attn_heads': 0,
                'receives_context': False,
                'dropout': 0.0,
                'attn_dropout': 0.0},
     'inputs': [['x', [1, 16, 16]]],
     'tol': [0.0001, 1e-05],
     'reference': 'linear_attention_transformer 0.12.1 (lucidrains/linear-attention-transformer '
                  "@1033093) SelfAttention(**config) with psi_fn 'elu1' = DEFAULT_PSI (elu(x)+1), "
                  "'relu' = F.relu (psi_fn is only used when causal); torch 1.13.0a0 CPU float32, "
                  'eval(), torch.manual_seed(1290) before init and inputs. input_mask (B,N) bool: '
                  'true = keep. Imports of local_attention, linformer, product_key_memory, '
                  'axial_positional_embedding stubbed (unused with n_local_attn_heads=0); '
                  'fractions.gcd aliased to math.gcd.'},
    {'id': 'linear_self_causal_one_kv_b1_relu',
     'type': 'linear_self',
     'seed': 1291,
     'config': {'dim': 8,
                'heads': 2,
                'causal': True,
                'dim_head': 6,
                'one_kv_head': True,
                'psi_fn': 'relu',
                'blindspot_size': 1,
                'n_local_attn_heads': 0,
                'receives_context': False,
                'dropout': 0.0,
                'attn_dropout': 0.0},
     'inputs': [['x', [2, 7, 8]]],
     'tol': [0.0001, 1e-05],
     'reference': 'linear_attention_transformer 0.12.1 (lucidrains/linear-attention-transformer '
                  "@1033093) SelfAttention(**config) with psi_fn 'elu1' = DEFAULT_PSI (elu(x)+1), "
                  "'relu' = F.relu (psi_fn is only used when causal); torch 1.13.0a0 CPU float32, "
                  'eval(), torch.manual_seed(1291) before init and inputs. input_mask (B,N) bool: '
                  'true = keep. Imports of local_attention, linformer, product_key_memory, '
                  'axial_positional_embedding stubbed (unused with n_local_attn_heads=0); '
                  'fractions.gcd aliased to math.gcd.'},
    {'id': 'linear_image_default',
     'type': 'linear_image',
     'seed': 1292,
     'config': {'chan': 6,
                'chan_out': None,
                'kernel_size': 1,
                'padding': 0,
                'stride': 1,
                'key_dim': 4,
                'value_dim': 5,
                'heads': 2,
                'norm_queries': True},
     'inputs': [['x', [2, 6, 4, 5]]],
     'tol': [0.0001, 1e-05],
     'reference': 'linear_attention_transformer 0.12.1 (lucidrains/linear-attention-transformer '
                  '@1033093) images.ImageLinearAttention(**config); torch 1.13.0a0 CPU float32, '
                  'eval(), torch.manual_seed(1292) before init and inputs. Imports of '
                  'local_attention, linformer, product_key_memory, axial_positional_embedding '
                  'stubbed (unused with n_local_attn_heads=0); fractions.gcd aliased to math.gcd.'},
    {'id': 'linear_image_k3',
     'type': 'linear_image',
     'seed': 1293,
     'config': {'chan': 5,
                'chan_out': 7,
                'kernel_size': 3,
                'padding': 1,
                'stride': 1,
                'key_dim': 4,
                'value_dim': 6,
                'heads': 2,
                'norm_queries': True},
     'inputs': [['x', [1, 5, 5, 6]]],
     'tol': [0.0001, 1e-05],
     'reference': 'linear_attention_transformer 0.12.1 (lucidrains/linear-attention-transformer '
                  '@1033093) images.ImageLinearAttention(**config); torch 1.13.0a0 CPU float32, '
                  'eval(), torch.manual_seed(1293) before init and inputs. Imports of '
                  'local_attention, linformer, product_key_memory, axial_positional_embedding '
                  'stubbed (unused with n_local_attn_heads=0); fractions.gcd aliased to math.gcd.'},
    {'id': 'linear_image_no_norm_queries',
     'type': 'linear_image',
     'seed': 1294,
     'config': {'chan': 6,
                'chan_out': None,
                'kernel_size': 1,
                'padding': 0,
                'stride': 1,
                'key_dim': 6,
                'value_dim': 4,
                'heads': 3,
                'norm_queries': False},
     'inputs': [['x', [2, 6, 3, 4]]],
     'tol': [0.0001, 1e-05],
     'reference': 'linear_attention_transformer 0.12.1 (lucidrains/linear-attention-transformer '
                  '@1033093) images.ImageLinearAttention(**config); torch 1.13.0a0 CPU float32, '
                  'eval(), torch.manual_seed(1294) before init and inputs. Imports of '
                  'local_attention, linformer, product_key_memory, axial_positional_embedding '
                  'stubbed (unused with n_local_attn_heads=0); fractions.gcd aliased to math.gcd.'},
    {'id': 'linear_image_context',
     'type': 'linear_image',
     'seed': 1295,
     'config': {'chan': 4,
                'chan_out': 6,
                'kernel_size': 1,
                'padding': 0,
                'stride': 1,
                'key_dim': 5,
                'value_dim': 5,
                'heads': 2,
                'norm_queries': True},
     'inputs': [['x', [2, 4, 4, 4]]],
     'masks': {'context': ['randn', [2, 4, 7]]},
     'tol': [0.0001, 1e-05],
     'reference': 'linear_attention_transformer 0.12.1 (lucidrains/linear-attention-transformer '
                  '@1033093) images.ImageLinearAttention(**config); torch 1.13.0a0 CPU float32, '
                  'eval(), torch.manual_seed(1295) before init and inputs. context (B, chan, n) is '
                  'reshaped by the reference to (B, chan, 1, n). Imports of local_attention, '
                  'linformer, product_key_memory, axial_positional_embedding stubbed (unused with '
                  'n_local_attn_heads=0); fractions.gcd aliased to math.gcd.'},
    # parity cases added with the generator (issue 11)
    {'id': 'linear_query_dimensions',
     'type': 'linear',
     'seed': 1296,
     'config': {'query_dimensions': 3, 'feature_map': None, 'eps': 1e-06},
     'inputs': [['queries', [2, 5, 2, 6]], ['keys', [2, 7, 2, 6]], ['values', [2, 7, 2, 4]]],
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) LinearAttention(3); '
                  'forward(queries, keys, values, attn_mask, query_lengths, key_lengths) with '
                  'masks built as fast_transformers.masking objects: attn_mask -> FullMask(bool '
                  '(L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1296) before init and inputs. '
                  'feature_map=None means the default elu_feature_map: phi(x) = elu(x) + 1. '
                  'query_dimensions (3) differs from E (6): the default feature map ignores it, '
                  'so phi is applied to all 6 dimensions.'},
    {'id': 'conditional_full_length_limit_0',
     'type': 'conditional_full',
     'seed': 1297,
     'config': {'other_attention': {'type': 'linear', 'query_dimensions': 4, 'feature_map': None,
                                    'eps': 1e-06},
                'length_limit': 0,
                'softmax_temp': None,
                'attention_dropout': 0.1},
     'inputs': [['queries', [2, 6, 2, 4]], ['keys', [2, 5, 2, 4]], ['values', [2, 5, 2, 4]]],
     'masks': {'key_lengths': ['lengths', [5, 3]]},
     'tol': [0.0001, 1e-05],
     'reference': 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9) ConditionalFullAttention(LinearAttention(4), length_limit=0); '
                  'forward(queries, keys, values, attn_mask, query_lengths, key_lengths) with '
                  'masks built as fast_transformers.masking objects: attn_mask -> FullMask(bool '
                  '(L,S)) (TriangularCausalMask when it is the causal mask), '
                  'query_lengths/key_lengths -> LengthMask(lengths, max_len=L or S); an absent '
                  'mask is the all-ones FullMask(L,S) / LengthMask of full lengths. torch 1.13.0a0 '
                  'CPU float32, eval(), torch.manual_seed(1297) before init and inputs. '
                  'Uses other_attention when L > length_limit or S > length_limit, FullAttention '
                  'otherwise; with length_limit=0 every input uses other_attention.'},
]

# ---- attention maps: the reference's weights as extra outputs ('maps': True) ----------------
# gen.py captures them with refs.MAPS (AttentionEvent, the Dropout the weights pass through, or
# Tensor.softmax) and stores them in io.safetensors next to 'out'; case.json's extra_outputs maps
# attnd's output names to those tensors (compared by `attn run --output-attention`).

_FT_MASKS = ('forward(queries, keys, values, attn_mask, query_lengths, key_lengths) with masks '
             'built as fast_transformers.masking objects (attn_mask causal -> TriangularCausalMask, '
             'lengths -> LengthMask). ')


def _ref(lib, what, seed, extra=''):
    return ('%s %s; torch 1.13.0a0 CPU float32, eval(), torch.manual_seed(%d) before init and '
            'inputs. %s' % (lib, what, seed, extra)).strip()


_FT = 'fast_transformers 0.4.0 (idiap/fast-transformers @2ad36b9)'
_AREA = 'area_attention 0.1.0 (mikomel/area-attention @06f219e)'
_AXIAL = 'axial_attention 0.6.1 (lucidrains/axial-attention @eff2c10)'
_COMP = 'compositional_attention_pytorch 0.0.1 (lucidrains/compositional-attention-pytorch @e4e5954)'

CASES += [
    {'id': 'maps_full_causal_key_lengths', 'type': 'full', 'seed': 1401, 'maps': True,
     'config': {'softmax_temp': None, 'attention_dropout': 0.1},
     'inputs': [['queries', [2, 7, 2, 8]], ['keys', [2, 7, 2, 8]], ['values', [2, 7, 2, 6]]],
     'masks': {'attn_mask': ['causal', [7, 7]], 'key_lengths': ['lengths', [7, 5]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_FT, 'FullAttention(); ' + _FT_MASKS, 1401,
                       'attention: the matrix of its AttentionEvent.')},
    {'id': 'maps_full_softmax_temp', 'type': 'full', 'seed': 1402, 'maps': True,
     'config': {'softmax_temp': 0.3, 'attention_dropout': 0.1},
     'inputs': [['queries', [2, 6, 3, 4]], ['keys', [2, 9, 3, 4]], ['values', [2, 9, 3, 5]]],
     'masks': {'key_lengths': ['lengths', [9, 4]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_FT, 'FullAttention(softmax_temp=0.3); ' + _FT_MASKS, 1402,
                       'attention: the matrix of its AttentionEvent.')},
    {'id': 'maps_local_ctx5_key_lengths', 'type': 'local', 'seed': 1403, 'maps': True,
     'config': {'local_context': 5, 'softmax_temp': None, 'attention_dropout': 0.1},
     'inputs': [['queries', [2, 10, 2, 4]], ['keys', [2, 10, 2, 4]], ['values', [2, 10, 2, 6]]],
     'masks': {'key_lengths': ['lengths', [10, 6]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_FT, 'LocalAttention(5); ' + _FT_MASKS, 1403,
                       'attention: the (N,H,L,5) band A after its dropout, made dense over S (slot k '
                       'of query l is key l - 2 + k).')},
    {'id': 'maps_local_ctx4_causal', 'type': 'local', 'seed': 1404, 'maps': True,
     'config': {'local_context': 4, 'softmax_temp': None, 'attention_dropout': 0.1},
     'inputs': [['queries', [1, 9, 2, 4]], ['keys', [1, 9, 2, 4]], ['values', [1, 9, 2, 3]]],
     'masks': {'attn_mask': ['causal', [9, 9]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_FT, 'LocalAttention(4); ' + _FT_MASKS, 1404,
                       'attention: the (N,H,L,4) band A after its dropout, made dense over S.')},
    {'id': 'maps_exact_topk3_key_lengths', 'type': 'exact_topk', 'seed': 1405, 'maps': True,
     'config': {'topk': 3, 'softmax_temp': None, 'attention_dropout': 0.1},
     'inputs': [['queries', [2, 7, 2, 4]], ['keys', [2, 10, 2, 4]], ['values', [2, 10, 2, 5]]],
     'masks': {'key_lengths': ['lengths', [10, 6]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_FT, 'ExactTopKAttention(topk=3); ' + _FT_MASKS, 1405,
                       'attention: A after its dropout.')},
    {'id': 'maps_conditional_full_below', 'type': 'conditional_full', 'seed': 1406, 'maps': True,
     'config': {'other_attention': {'type': 'linear', 'query_dimensions': 4, 'feature_map': None,
                                    'eps': 1e-06},
                'length_limit': 9, 'softmax_temp': None, 'attention_dropout': 0.1},
     'inputs': [['queries', [2, 9, 2, 4]], ['keys', [2, 8, 2, 4]], ['values', [2, 8, 2, 5]]],
     'masks': {'key_lengths': ['lengths', [8, 6]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_FT, 'ConditionalFullAttention(LinearAttention(4), length_limit=9); ' + _FT_MASKS,
                       1406, 'Within the limit: attention is its FullAttention\'s AttentionEvent matrix.')},
    {'id': 'maps_attention_layer_causal', 'type': 'attention_layer', 'seed': 1407, 'maps': True,
     'config': {'attention': {'type': 'full', 'softmax_temp': None, 'attention_dropout': 0.1},
                'd_model': 12, 'n_heads': 3, 'd_keys': None, 'd_values': None, 'd_model_keys': None},
     'inputs': [['queries', [2, 8, 12]], ['keys', [2, 8, 12]], ['values', [2, 8, 12]]],
     'masks': {'attn_mask': ['causal', [8, 8]], 'key_lengths': ['lengths', [8, 6]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_FT, 'AttentionLayer(FullAttention(), 12, 3); ' + _FT_MASKS, 1407,
                       'attention: the inner FullAttention\'s AttentionEvent matrix.')},
    {'id': 'maps_attention_layer_topk', 'type': 'attention_layer', 'seed': 1408, 'maps': True,
     'config': {'attention': {'type': 'exact_topk', 'topk': 4, 'softmax_temp': None,
                              'attention_dropout': 0.1},
                'd_model': 8, 'n_heads': 2, 'd_keys': None, 'd_values': None, 'd_model_keys': 6},
     'inputs': [['queries', [2, 6, 8]], ['keys', [2, 9, 6]], ['values', [2, 9, 6]]],
     'tol': [0.0001, 1e-05],
     'reference': _ref(_FT, 'AttentionLayer(ExactTopKAttention(topk=4), 8, 2, d_model_keys=6); ' +
                       _FT_MASKS, 1408, 'attention: the inner attention\'s A after its dropout.')},
    {'id': 'maps_area_mean_max_2d_topk', 'type': 'area', 'seed': 1409, 'maps': True,
     'config': {'key_query_size': 8, 'area_key_mode': 'mean', 'area_value_mode': 'max',
                'memory_height': 4, 'memory_width': 3, 'max_area_height': 3, 'max_area_width': 2,
                'dropout_rate': 0.0, 'top_k_areas': 3},
     'inputs': [['q', [2, 6, 8]], ['k', [2, 12, 8]], ['v', [2, 12, 5]]],
     'tol': [0.0001, 1e-05],
     'reference': _ref(_AREA, 'AreaAttention(...); forward(q, k, v)', 1409,
                       'attention: the weights its dropout sees (after the top-k filter); '
                       'attention_areas: (top, left, height, width) per area, heights and widths '
                       'from its _basic_pool.')},
    {'id': 'maps_area_max_sum_1d', 'type': 'area', 'seed': 1410, 'maps': True,
     'config': {'key_query_size': 6, 'area_key_mode': 'max', 'area_value_mode': 'sum',
                'memory_height': 1, 'memory_width': 7, 'max_area_height': 1, 'max_area_width': 3,
                'dropout_rate': 0.0, 'top_k_areas': 0},
     'inputs': [['q', [2, 5, 6]], ['k', [2, 7, 6]], ['v', [2, 7, 4]]],
     'tol': [0.0001, 1e-05],
     'reference': _ref(_AREA, 'AreaAttention(...); forward(q, k, v)', 1410,
                       'attention: the weights its dropout sees; attention_areas as above.')},
    {'id': 'maps_multi_head_area_2d_topk', 'type': 'multi_head_area', 'seed': 1411, 'maps': True,
     'config': {'area_attention': {'key_query_size': 4, 'area_key_mode': 'mean',
                                   'area_value_mode': 'sum', 'max_area_height': 2,
                                   'max_area_width': 2, 'memory_height': 3, 'memory_width': 4,
                                   'dropout_rate': 0.0, 'top_k_areas': 4},
                'num_heads': 2, 'key_query_size': 8, 'key_query_size_hidden': 4, 'value_size': 6,
                'value_size_hidden': 5},
     'inputs': [['q', [2, 5, 8]], ['k', [2, 12, 8]], ['v', [2, 12, 6]]],
     'tol': [0.0001, 1e-05],
     'reference': _ref(_AREA, 'MultiHeadAreaAttention(AreaAttention(...), ...); forward(q, k, v)', 1411,
                       'attention: its AreaAttention\'s (B*heads, Nq, A) weights as (B, heads, Nq, A).')},
    {'id': 'maps_axial_image_sum', 'type': 'axial', 'seed': 1412, 'maps': True,
     'config': {'dim': 8, 'num_dimensions': 2, 'heads': 2, 'dim_heads': None, 'dim_index': 1,
                'sum_axial_out': True},
     'inputs': [['x', [2, 8, 5, 6]]],
     'tol': [0.0001, 1e-05],
     'reference': _ref(_AXIAL, 'AxialAttention(...); forward(x)', 1412,
                       'attention_axis<k>: the k-th SelfAttention\'s dots.softmax(dim=-1), '
                       '(b*heads, t, t) as (rest..., heads, t, t).')},
    {'id': 'maps_axial_video_seq', 'type': 'axial', 'seed': 1413, 'maps': True,
     'config': {'dim': 6, 'num_dimensions': 3, 'heads': 3, 'dim_heads': 4, 'dim_index': -1,
                'sum_axial_out': False},
     'inputs': [['x', [1, 4, 5, 3, 6]]],
     'tol': [0.0001, 1e-05],
     'reference': _ref(_AXIAL, 'AxialAttention(..., sum_axial_out=False); forward(x)', 1413,
                       'attention_axis<k>: the k-th SelfAttention\'s softmax, over the previous '
                       'axis\' output.')},
    {'id': 'maps_axial_image_transformer_d2', 'type': 'axial_image_transformer', 'seed': 1414,
     'maps': True,
     'config': {'dim': 8, 'depth': 2, 'heads': 2, 'dim_heads': None, 'dim_index': 1,
                'reversible': True, 'axial_pos_emb_shape': None},
     'inputs': [['x', [1, 8, 4, 5]]], 'post': 'perturb_norms',
     'tol': [0.0001, 0.0001],
     'reference': _ref(_AXIAL, 'AxialImageTransformer(dim=8, depth=2, heads=2); forward(x)', 1414,
                       'attention_axis<k>: axis k\'s softmax of every layer, stacked on a depth axis.')},
    {'id': 'maps_compositional_mask', 'type': 'compositional', 'seed': 1415, 'maps': True,
     'config': {'dim': 16, 'dim_head': 4, 'num_searches': 3, 'num_retrievals': 2, 'dropout': 0.0,
                'prenorm': False, 'causal': False},
     'inputs': [['x', [2, 7, 16]]],
     'masks': {'mask': ['bool', [[1, 0, 1, 1, 1, 0, 1], [1, 1, 1, 0, 0, 0, 0]]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_COMP, 'CompositionalAttention(...); forward(x, mask=mask)', 1415,
                       'attention: search_attn, attention_retrieval: retrieval_attn, as their '
                       'dropouts see them.')},
    {'id': 'maps_compositional_causal', 'type': 'compositional', 'seed': 1416, 'maps': True,
     'config': {'dim': 16, 'dim_head': 4, 'num_searches': 2, 'num_retrievals': 3, 'dropout': 0.0,
                'prenorm': True, 'causal': True},
     'inputs': [['x', [2, 6, 16]]], 'post': 'perturb_norms',
     'tol': [0.0001, 1e-05],
     'reference': _ref(_COMP, 'CompositionalAttention(..., prenorm=True, causal=True); forward(x)', 1416,
                       'attention: search_attn, attention_retrieval: retrieval_attn.')},
    {'id': 'maps_linear_key_lengths', 'type': 'linear', 'seed': 1417, 'maps': True,
     'config': {'query_dimensions': 4, 'feature_map': None, 'eps': 1e-06},
     'inputs': [['queries', [2, 6, 2, 4]], ['keys', [2, 8, 2, 4]], ['values', [2, 8, 2, 5]]],
     'masks': {'key_lengths': ['lengths', [8, 5]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_FT, 'LinearAttention(4); ' + _FT_MASKS, 1417,
                       'attention: the matrix its forward implies, Q K^T times its normaliser Z from '
                       'its own feature map (elu + 1) and key-length masking; A V is its output.')},
    {'id': 'maps_causal_linear_key_lengths', 'type': 'causal_linear', 'seed': 1418, 'maps': True,
     'config': {'query_dimensions': 4, 'feature_map': None, 'eps': 1e-06},
     'inputs': [['queries', [2, 7, 2, 4]], ['keys', [2, 7, 2, 4]], ['values', [2, 7, 2, 3]]],
     'masks': {'attn_mask': ['causal', [7, 7]], 'key_lengths': ['lengths', [7, 4]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_FT, 'CausalLinearAttention(4); ' + _FT_MASKS, 1418,
                       'attention: the causal matrix its forward implies (cumulative normaliser); '
                       'A V is its output.')},
    {'id': 'maps_attention_layer_linear', 'type': 'attention_layer', 'seed': 1419, 'maps': True,
     'config': {'attention': {'type': 'linear', 'query_dimensions': 4, 'feature_map': None,
                              'eps': 1e-06},
                'd_model': 8, 'n_heads': 2, 'd_keys': None, 'd_values': None, 'd_model_keys': None},
     'inputs': [['queries', [2, 6, 8]], ['keys', [2, 7, 8]], ['values', [2, 7, 8]]],
     'tol': [0.0001, 1e-05],
     'reference': _ref(_FT, 'AttentionLayer(LinearAttention(4), 8, 2); ' + _FT_MASKS, 1419,
                       'attention: the inner LinearAttention\'s implied matrix over the projected heads.')},
]

_LAT = 'linear_attention_transformer 0.12.1 (lucidrains/linear-attention-transformer @1033093)'
_LAT_NOTE = ("SelfAttention(**config) with psi_fn 'elu1' = DEFAULT_PSI (elu(x)+1), 'relu' = F.relu; "
             'forward(x, input_mask=input_mask) (true = keep); local_attention etc. stubbed as in the '
             'linear_self rows')
_LAT_MAP = ('attention: the matrix its global attention implies (refs._maps_linear_self), att = A v '
            'per head before to_out; checked against its output.')


def _lat_cfg(**kw):
    c = {'dim': 16, 'heads': 2, 'causal': False, 'dim_head': None, 'one_kv_head': False,
         'psi_fn': 'elu1', 'blindspot_size': 1, 'n_local_attn_heads': 0,
         'receives_context': False, 'dropout': 0.0, 'attn_dropout': 0.0}
    c.update(kw)
    return c


CASES += [
    {'id': 'maps_linear_self_noncausal_mask', 'type': 'linear_self', 'seed': 1420, 'maps': True,
     'config': _lat_cfg(heads=2),
     'inputs': [['x', [2, 9, 16]]],
     'masks': {'input_mask': ['bool', [[1, 1, 0, 1, 1, 1, 0, 1, 1], [0, 0, 0, 0, 0, 0, 0, 0, 0]]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_LAT, _LAT_NOTE, 1420, _LAT_MAP + ' Stream 1 has every key masked: zero rows.')},
    {'id': 'maps_linear_self_noncausal_one_kv', 'type': 'linear_self', 'seed': 1421, 'maps': True,
     'config': _lat_cfg(dim=12, heads=3, dim_head=5, one_kv_head=True),
     'inputs': [['x', [2, 7, 12]]],
     'masks': {'input_mask': ['bool', [[1, 0, 1, 1, 0, 1, 1], [1, 1, 1, 1, 0, 0, 0]]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_LAT, _LAT_NOTE, 1421, _LAT_MAP)},
    {'id': 'maps_linear_self_causal_b1_mask', 'type': 'linear_self', 'seed': 1422, 'maps': True,
     'config': _lat_cfg(causal=True),
     'inputs': [['x', [2, 8, 16]]],
     'masks': {'input_mask': ['bool', [[1, 1, 1, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0, 0]]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_LAT, _LAT_NOTE, 1422, _LAT_MAP)},
    {'id': 'maps_linear_self_causal_b4_relu', 'type': 'linear_self', 'seed': 1423, 'maps': True,
     'config': _lat_cfg(dim=12, causal=True, psi_fn='relu', blindspot_size=4),
     'inputs': [['x', [2, 12, 12]]],
     'masks': {'input_mask': ['bool', [[1] * 12, [1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0]]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_LAT, _LAT_NOTE, 1423,
                       _LAT_MAP + ' Blindspot 4: the first bucket\'s rows are 0; relu leaves features '
                       'with a zero running sum, so rows sum to less than 1.')},
    {'id': 'maps_linear_self_causal_one_kv_b4', 'type': 'linear_self', 'seed': 1424, 'maps': True,
     'config': _lat_cfg(heads=4, causal=True, one_kv_head=True, blindspot_size=4),
     'inputs': [['x', [1, 16, 16]]],
     'tol': [0.0001, 1e-05],
     'reference': _ref(_LAT, _LAT_NOTE, 1424, _LAT_MAP)},
]

# The random fast-transformers types, in the configurations where the reference's output does not
# depend on its draws (so attnd, with its own seeded draws, must give the same numbers): one
# cluster (every query in it, whatever the planes and the initial centroid), one chunk (every
# query sees every key, whatever the rotations; only the order it sums in changes).
_FT_RANDOM = ('The weights from its own draws (refs._maps_clustered / _maps_reformer); with %s they '
              'do not depend on them. A V is checked against its output.')

CASES += [
    {'id': 'maps_clustered_one_cluster_key_lengths', 'type': 'clustered', 'seed': 1425, 'maps': True,
     'config': {'clusters': 1, 'iterations': 10, 'bits': 16, 'hash_bias': True, 'softmax_temp': None,
                'attention_dropout': 0.1},
     'inputs': [['queries', [2, 7, 2, 4]], ['keys', [2, 9, 2, 4]], ['values', [2, 9, 2, 5]]],
     'masks': {'key_lengths': ['lengths', [9, 5]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_FT, 'ClusteredAttention(clusters=1, bits=16); ' + _FT_MASKS, 1425,
                       'attention: the centroid softmax each query used. ' + _FT_RANDOM % 'one cluster')},
    {'id': 'maps_improved_clustered_one_cluster_topk3', 'type': 'improved_clustered', 'seed': 1426,
     'maps': True,
     'config': {'clusters': 1, 'iterations': 10, 'bits': 16, 'hash_bias': True, 'topk': 3,
                'softmax_temp': None, 'attention_dropout': 0.1},
     'inputs': [['queries', [2, 7, 2, 4]], ['keys', [2, 10, 2, 4]], ['values', [2, 10, 2, 5]]],
     'masks': {'key_lengths': ['lengths', [10, 6]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_FT, 'ImprovedClusteredAttention(clusters=1, bits=16, topk=3); ' + _FT_MASKS, 1426,
                       'attention: the centroid softmax off the top-3 keys, the query\'s own softmax on '
                       'them times the centroid\'s mass there. ' + _FT_RANDOM % 'one cluster')},
    {'id': 'maps_improved_clustered_causal_one_cluster', 'type': 'improved_clustered_causal',
     'seed': 1428, 'maps': True,
     'config': {'clusters': 1, 'iterations': 10, 'bits': 16, 'hash_bias': True, 'topk': 4,
                'softmax_temp': None, 'attention_dropout': 0.1},
     'inputs': [['queries', [2, 8, 2, 4]], ['keys', [2, 8, 2, 4]], ['values', [2, 8, 2, 3]]],
     'masks': {'attn_mask': ['causal', [8, 8]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_FT, 'ImprovedClusteredCausalAttention(clusters=1, bits=16, topk=4); ' + _FT_MASKS,
                       1428, 'attention: each query\'s softmax on its cluster\'s top-4 keys, future ones '
                       '0 (rows sum to at most 1). ' + _FT_RANDOM % 'one cluster')},
    {'id': 'maps_reformer_one_chunk_masked', 'type': 'reformer', 'seed': 1427, 'maps': True,
     'config': {'chunk_size': 8, 'bits': 4, 'rounds': 2, 'masked': True, 'softmax_temp': None,
                'attention_dropout': 0.1},
     'inputs': [['queries', [2, 8, 2, 4]], ['keys', [2, 8, 2, 4]], ['values', [2, 8, 2, 4]]],
     'masks': {'key_lengths': ['lengths', [8, 5]]},
     'tol': [0.0001, 1e-05],
     'reference': _ref(_FT, 'ReformerAttention(chunk_size=8, bits=4, rounds=2, masked=True); ' + _FT_MASKS,
                       1427, 'attention: each round\'s chunk softmax at the keys\' positions, averaged. ' +
                       _FT_RANDOM % 'one chunk of the whole sequence')},
]
