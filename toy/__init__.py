"""The course's toy worlds: 2D Gaussian mixtures, the shapes world, and their tiny models."""
