"""The networks and their pieces: CycleGAN's generator and discriminator, the style network, AdaIN, VGG features,
Winograd convolutions, losses, the image pool, and the registry of model kinds."""
