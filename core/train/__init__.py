"""Training: generic loop with exact resume and DDP (loop, sampler, state, dist), data sets (data),
the U-Net/VAE/CGCNN tasks (tasks, cgcnn_task), the shipped-model recipe (recipe) and the
``icsg3d train`` command (cli)."""
