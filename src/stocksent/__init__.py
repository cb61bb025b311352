"""stocksent: bullish or bearish? LSTM sentiment for trader messages."""
from .classifier import SentimentClassifier
from .config import Config, DataConfig, ModelConfig, PreprocessConfig, TrainConfig
from .data.corpus import split_texts
from .errors import StocksentError
from .text.preprocess import normalize, tokenize

__version__ = "0.1.0"
__all__ = ["SentimentClassifier", "Config", "DataConfig", "ModelConfig", "PreprocessConfig",
           "TrainConfig", "StocksentError", "normalize", "split_texts", "tokenize", "__version__"]
