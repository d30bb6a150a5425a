"""Images of digits: from a drawing, an upload or a photo to MNIST's 28x28 (preprocessing), the training
images' random changes (augmentation), the learners' labelled drawings (handwriting), and grids of digits
(gallery)."""
