"""Snippet scorers: the FRD scorer and the C2FPL classifier (the auxiliary scorer), both averaged over crops."""
import torch
from torch import nn


class Scorer(nn.Module):
    """FRD scorer: ``(N, C, ..., D)`` → ``(N, ..., 1)``: per-crop probability D→1024→128→1, mean over crops (dim 1)."""

    def __init__(self, feature_size: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.fc1 = nn.Linear(feature_size, 1024)
        self.fc2 = nn.Linear(1024, 128)
        self.classifier = nn.Linear(128, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(torch.relu(self.fc1(x)))
        x = self.dropout(torch.relu(self.fc2(x)))
        return torch.sigmoid(self.classifier(x)).mean(dim=1)


class C2FPLClassifier(nn.Module):
    """C2FPL classifier: ``(N, C, ..., D)`` → ``(N, ..., 1)``: per-crop probability D→512→32→1, mean over crops.

    ``fc_att1``/``fc_att2`` are unused; they are kept so that published C2FPL checkpoints load unchanged.
    """

    def __init__(self, feature_size: int, dropout: float = 0.6) -> None:
        super().__init__()
        self.fc1 = nn.Linear(feature_size, 512)
        self.fc_att1 = nn.Sequential(nn.Linear(feature_size, 512))
        self.fc2 = nn.Linear(512, 32)
        self.fc_att2 = nn.Sequential(nn.Linear(512, 32))
        self.fc3 = nn.Linear(32, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(torch.relu(self.fc1(x)))
        x = self.dropout(torch.relu(self.fc2(x)))
        return torch.sigmoid(self.fc3(x)).mean(dim=1)
