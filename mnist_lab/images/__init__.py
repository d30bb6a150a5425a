"""Images of digits: ink to MNIST's 28x28 (preprocessing), from a drawing (canvas) or from a file or photo
(uploads); the training images' random changes (augmentation), the learners' labelled drawings
(handwriting), and grids of digits (gallery)."""
