"""The networks and their pieces: CycleGAN's generator and discriminator, the style network, VGG features, Winograd convolutions, losses, the image pool."""
