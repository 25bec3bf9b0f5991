"""Formats other tools read and write: ARPA back-off files (arpa.py: KenLM, SRILM) and the Hugging
Face format (hf.py: export to transformers, vLLM, TGI, llama.cpp; import of Llama, Gemma 3 and GPT-2)."""
