"""Encoders for AU detection: timm backbones + the per-AU ANFL graph head.

    from austack.models import create_encoder
    enc = create_encoder("resnet50", n_au=12)          # random init, said in enc.pretrained_note
    out = enc(x)                                       # out.embeddings [B,12,512], out.probs [B,12]
"""
from .anfl import ANFLHead, HEADS, LinearBlock, default_graph_k, register_head
from .backbones import ENCODERS, TimmTokens, TinyConvBackbone, register_encoder
from .encoder import AUEncoder, EncoderConfig, EncoderOutput, create_encoder, list_encoders
from .weights import LoadedWeights, load_backbone_weights


def list_heads(pattern: str = "*") -> list[str]:
    """Registered head names matching the fnmatch `pattern`."""
    return HEADS.list(pattern)


__all__ = ["AUEncoder", "ANFLHead", "EncoderConfig", "EncoderOutput", "LinearBlock", "LoadedWeights",
           "TimmTokens", "TinyConvBackbone", "ENCODERS", "HEADS", "create_encoder", "default_graph_k",
           "list_encoders", "list_heads", "load_backbone_weights", "register_encoder", "register_head"]
